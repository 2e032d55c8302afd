"""Sign-in with e-legitimation: OpenID Connect against a real local provider."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from calendar_app.demo import PERSONNUMMER, load_demo
from calendar_app.models import Person, Role, User, UserSession
from calendar_app.services.accounts import set_staff_id
from tests.support.oidc_broker import (
    PNR_CLAIM,
    STAFF_CLAIM,
    free_port,
    running_broker,
    set_claims,
    sign_in,
)
from tests.support.world import build_world
from tests.web.test_sign_in_hardening import GOOD_TARGETS, HOSTILE_TARGETS, browser_destination

UNREGISTERED_PNR = "198112289874"  # a Skatteverket test number nobody registered here


@pytest.fixture(scope="module")
def broker():
    with running_broker() as issuer:
        yield issuer


@pytest.fixture
def app_config(broker, request):
    """The broker's settings, and any a test adds (indirect parametrization)."""
    return {
        "OIDC_ISSUER": broker,
        "OIDC_CLIENT_ID": "personkalendern",
        "OIDC_CLIENT_SECRET": "s",
        **getattr(request, "param", {}),
    }


def _me(client):
    response = client.get("/api/v1/me")
    return response.status_code, response.get_json()


def test_the_demo_person_signs_in_with_e_legitimation(client, session, now, broker, caplog):
    load_demo(session, now=now)
    session.commit()
    set_claims(broker, "alva-bankid", {PNR_CLAIM: PERSONNUMMER, "name": "Alva Lindqvist"})

    with caplog.at_level(logging.DEBUG):
        callback, urls = sign_in(client, broker, "alva-bankid", next_path="/")

    assert callback.status_code == 302 and callback.location == "/"
    status, me = _me(client)
    alva = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).one()
    assert status == 200 and me["role"] == "person" and me["person_id"] == alva.id
    assert me["username"] == "alva"  # the demo's own account, not a new one
    assert all(PERSONNUMMER not in url and PERSONNUMMER[2:] not in url for url in urls)
    # The service's side of the exchange (Authlib, requests, urllib3) logs no personnummer;
    # the test's own client (httpx) is not the service.
    service_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert service_lines and not any(PERSONNUMMER[2:] in line for line in service_lines)
    method = session.scalars(select(UserSession.method).order_by(UserSession.id.desc())).first()
    session.commit()
    assert method == "oidc"
    assert "Alva" in client.get(f"/people/{alva.id}/week").get_data(as_text=True)


def test_a_registered_person_without_an_account_gets_one_on_first_sign_in(
    client, session, now, broker
):
    world = build_world(session, now)
    bo = session.get(Person, world.other_person_id)
    session.execute(User.__table__.delete().where(User.username == "other_person"))
    session.commit()
    set_claims(broker, "bo-freja", {PNR_CLAIM: bo.personnummer})

    first, _ = sign_in(client, broker, "bo-freja")
    client.post("/logout")
    second, _ = sign_in(client, broker, "bo-freja")

    assert first.status_code == second.status_code == 302
    accounts = session.scalars(select(User).where(User.person_id == bo.id)).all()
    session.commit()
    assert len(accounts) == 1 and accounts[0].role == Role.PERSON
    assert bo.personnummer not in accounts[0].username
    assert _me(client)[1]["person_id"] == bo.id


def test_a_caregiver_signs_in_by_staff_id(client, session, now, broker):
    build_world(session, now)
    set_staff_id(session, "caregiver", "SE2321000065-K1")
    set_claims(broker, "karin-siths", {STAFF_CLAIM: "SE2321000065-K1"})

    callback, _ = sign_in(client, broker, "karin-siths")

    assert callback.status_code == 302
    status, me = _me(client)
    assert status == 200 and me["username"] == "caregiver" and me["role"] == "caregiver"


def _caregiver_with_staff_card(session, now, broker) -> None:
    build_world(session, now)
    set_staff_id(session, "caregiver", "SE2321000065-K1")
    set_claims(broker, "karin-siths", {STAFF_CLAIM: "SE2321000065-K1"})


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_an_e_legitimation_sign_in_never_leads_off_site_whatever_next_says(
    client, session, now, broker, target
):
    _caregiver_with_staff_card(session, now, broker)

    callback, _ = sign_in(client, broker, "karin-siths", next_path=target)

    assert callback.status_code == 302 and callback.location == "/"
    assert browser_destination(callback.location) == "localhost"


@pytest.mark.parametrize("target", GOOD_TARGETS)
def test_an_e_legitimation_sign_in_leads_back_to_the_page_it_came_from(
    client, session, now, broker, target
):
    _caregiver_with_staff_card(session, now, broker)

    callback, _ = sign_in(client, broker, "karin-siths", next_path=target)

    assert callback.status_code == 302 and callback.location == target


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({PNR_CLAIM: UNREGISTERED_PNR}, "Det finns ingen kalender för dig här ännu"),
        ({PNR_CLAIM: "19900101-0000"}, "Inloggningen sa inte vem du är"),
        ({STAFF_CLAIM: "SE-nobody"}, "Din e-legitimation är inte kopplad till något konto här"),
        ({"name": "Anonym"}, "Inloggningen sa inte vem du är"),
    ],
)
def test_a_sign_in_that_matches_no_account_is_refused_in_swedish(
    client, session, now, broker, claims, message
):
    build_world(session, now)
    set_claims(broker, "someone", claims)

    callback, _ = sign_in(client, broker, "someone")

    assert callback.status_code == 403
    assert message in callback.get_data(as_text=True)
    assert _me(client)[0] == 401
    assert session.scalars(select(User).where(User.username.like("person-%"))).all() == []


def test_refusing_at_the_broker_or_a_forged_answer_signs_nobody_in(client, session, now, broker):
    build_world(session, now)
    set_claims(broker, "alva", {PNR_CLAIM: session.get(Person, 1).personnummer})
    session.commit()

    denied, _ = sign_in(client, broker, "alva", deny=True)
    forged = client.get("/login/e-legitimation/callback?code=abc&state=made-up")

    for response in (denied, forged):
        assert response.status_code == 401
        assert "Inloggningen slutfördes inte" in response.get_data(as_text=True)
    assert _me(client)[0] == 401


def test_the_login_page_offers_e_legitimation_and_passwords(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Logga in med e-legitimation" in page and 'name="password"' in page


@pytest.mark.parametrize("password_login", [True, False])
def test_a_county_can_switch_password_sign_in_off(database_url, tmp_path, broker, password_login):
    from calendar_app import create_app
    from tests.conftest import isolated_url

    url = isolated_url(database_url, tmp_path)
    app = create_app(
        {
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "WTF_CSRF_ENABLED": False,
            "OIDC_ISSUER": broker,
            "OIDC_CLIENT_ID": "personkalendern",
            "PASSWORD_LOGIN": password_login,
        }
    )
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert ('name="password"' in page) is password_login
    posted = client.post("/login", data={"username": "x", "password": "y"})
    assert posted.status_code == (401 if password_login else 404)
    app.extensions["engine"].dispose()


def test_an_unreachable_broker_gets_a_clear_message(database_url, tmp_path):
    from calendar_app import create_app
    from tests.conftest import isolated_url

    url = isolated_url(database_url, tmp_path)
    app = create_app(
        {
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "WTF_CSRF_ENABLED": False,
            "OIDC_ISSUER": f"http://127.0.0.1:{free_port()}",
            "OIDC_CLIENT_ID": "personkalendern",
            "OIDC_TIMEOUT_SECONDS": 2,
        }
    )
    response = app.test_client().post("/login/e-legitimation", data={"next": "/"})
    assert response.status_code == 503
    assert "E-legitimationstjänsten svarar inte" in response.get_data(as_text=True)
    app.extensions["engine"].dispose()


@pytest.mark.parametrize(
    ("app_config", "claim", "protected"),
    [
        ({"OIDC_PROTECTED_IDENTITY_CLAIM": "protected"}, True, True),
        ({"OIDC_PROTECTED_IDENTITY_CLAIM": "protected"}, "true", True),
        ({"OIDC_PROTECTED_IDENTITY_CLAIM": "protected"}, None, False),
        ({}, True, False),  # a county whose broker sends no such claim: nothing is read
    ],
    indirect=["app_config"],
)
def test_the_brokers_protected_identity_claim_keeps_the_flag_in_step(
    client, session, now, broker, claim, protected
):
    from calendar_app.models import AuditEvent

    load_demo(session, now=now)
    session.commit()
    claims = {PNR_CLAIM: PERSONNUMMER, "name": "Alva Lindqvist"}
    if claim is not None:
        claims["protected"] = claim
    set_claims(broker, "alva-skyddad", claims)

    callback, _ = sign_in(client, broker, "alva-skyddad", next_path="/")

    assert callback.status_code == 302
    alva = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).one()
    session.refresh(alva)
    assert alva.protected_identity is protected
    audited = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "person.protected_identity_on")
    ).all()
    session.commit()
    assert audited == (["identity broker"] if protected else [])
