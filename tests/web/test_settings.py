"""Consent, helpers, care relationships, protected identity and the audit log (issue 3)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from calendar_app.models import AuditEvent, HelperGrant, Person
from tests.support.world import PASSWORD, log_in

WEEK = "/people/{}/week?start=2026-11-30"
TITLE_B = '<span class="title">Boendestöd</span>'  # the home-support visit's title


def week_page(client, world) -> str:
    response = client.get(WEEK.format(world.person_id))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_unit_sees_other_units_only_as_busy_until_the_person_consents(app, client, world):
    log_in(client, "caregiver")
    assert "Hemma" not in week_page(client, world)
    person = app.test_client()
    log_in(person, "person")
    person.post(
        f"/people/{world.person_id}/settings/units/{world.unit_a}",
        data={"others_level": "time_place"},
    )
    page = week_page(client, world)
    assert "Hemma" in page and TITLE_B not in page, "time and place, not what"
    person.post(
        f"/people/{world.person_id}/settings/units/{world.unit_a}", data={"others_level": "full"}
    )
    assert TITLE_B in week_page(client, world)


def test_the_sensitive_flag_is_kept_per_unit(client, world):
    log_in(client, "person")
    response = client.put(
        f"/api/v1/people/{world.person_id}/consents/{world.unit_b}",
        json={"others_level": "busy", "sensitive": True},
    )
    assert response.status_code == 200
    units = client.get(f"/api/v1/people/{world.person_id}/settings").json["units"]
    assert {u["name"]: u["sensitive"] for u in units} == {
        "Boendestöd Växjö kommun": True,
        "Vuxenpsykiatrin Växjö": False,
    }


def test_a_bad_consent_body_changes_nothing(client, world):
    log_in(client, "person")
    bad = client.put(
        f"/api/v1/people/{world.person_id}/consents/{world.unit_a}",
        json={"others_level": "everything", "sensitive": True},
    )
    assert bad.status_code == 400 and bad.json["error"]["code"] == "consent.level"
    not_json = client.put(
        f"/api/v1/people/{world.person_id}/consents/{world.unit_a}", data="others_level=full"
    )
    assert not_json.json["error"]["code"] == "request.json"
    units = client.get(f"/api/v1/people/{world.person_id}/settings").json["units"]
    assert all(u["others_level"] == "busy" and not u["sensitive"] for u in units)


def test_a_withdrawn_helper_loses_the_calendar_at_once(app, client, world, session):
    log_in(client, "helper_busy")
    assert "Upptagen" in week_page(client, world)
    person = app.test_client()
    log_in(person, "person")
    response = person.post(
        f"/people/{world.person_id}/settings/helpers/{world.grant_busy}/withdraw"
    )
    assert response.status_code == 302
    assert client.get(WEEK.format(world.person_id)).status_code == 403
    assert (
        client.get(
            f"/api/v1/people/{world.person_id}/calendar?from=2026-11-30&to=2026-12-07"
        ).status_code
        == 403
    )
    assert "Alva" not in client.get("/").get_data(as_text=True), "gone from the helper's list"


def test_a_grant_ends_after_its_last_day(client, world, session, now):
    session.execute(
        update(HelperGrant)
        .where(HelperGrant.id == world.grant_busy)
        .values(valid_until=(now - timedelta(days=1)).date())
    )
    session.commit()
    log_in(client, "helper_busy")
    assert client.get(WEEK.format(world.person_id)).status_code == 403


def test_a_helper_who_only_gets_reminders_cannot_open_the_calendar(client, world):
    log_in(client, "helper_reminders")
    assert client.get(WEEK.format(world.person_id)).status_code == 403


def test_the_person_invites_a_helper_who_accepts_with_an_account(app, client, world):
    log_in(client, "person")
    response = client.post(
        f"/people/{world.person_id}/settings/helpers",
        data={
            "name": "Sam Berg",
            "contact": "070-765 43 21",
            "basis": "narstaende",
            "view_level": "time_place",
            "reminders": "on",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    code = re.search(r"hjälpperson: ([0-9A-F-]{27})", page).group(1)
    # Shown on the answer only: never in the (signed, readable) session cookie.
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    stored = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert response.status_code == 201 and code not in str(stored)
    helper = app.test_client()
    bad = helper.post(
        "/invitation",
        data={"code": "AAAAAA-BBBBBB-CCCCCC-DDDDDD", "username": "sam", "password": "sam-password"},
    )
    assert bad.status_code == 400 and "Koden gäller inte" in bad.get_data(as_text=True)
    accepted = helper.post(
        "/invitation",
        data={"code": code, "username": "sam", "display_name": "Sam", "password": "sam tar tåget"},
    )
    assert accepted.status_code == 302
    again = helper.post(
        "/invitation", data={"code": code, "username": "sam2", "password": "sam-pass2"}
    )
    assert again.status_code == 400, "a code works once"
    helper.post("/login", data={"username": "sam", "password": "sam tar tåget"})
    page = week_page(helper, world)
    assert "Sigfridsvägen 9" in page and "Samtal" not in page


@pytest.mark.parametrize(
    ("data", "code_text"),
    [
        (
            {
                "name": "X",
                "contact": "inte ett nummer",
                "basis": "narstaende",
                "view_level": "busy",
            },
            "mobilnummer eller e-postadress",
        ),
        (
            {"name": "X", "contact": "x@example.se", "basis": "god_man", "view_level": "busy"},
            "Välj vad hjälppersonen är för dig",
        ),
        ({"name": "X", "contact": "x@example.se", "basis": "narstaende"}, "Välj minst en sak"),
    ],
)
def test_bad_invitations_are_refused_in_swedish_and_store_nothing(
    client, world, session, data, code_text
):
    log_in(client, "person")
    before = len(session.scalars(select(HelperGrant)).all())
    session.commit()
    page = client.post(
        f"/people/{world.person_id}/settings/helpers", data=data, follow_redirects=True
    ).get_data(as_text=True)
    assert code_text in page
    assert len(session.scalars(select(HelperGrant)).all()) == before


def test_an_administrator_registers_a_court_appointment_the_person_cannot_withdraw(
    app, client, world, session
):
    log_in(client, "admin")
    response = client.post(
        "/admin/court-helpers",
        data={
            "personnummer": "19900101-2385",
            "name": "God Man",
            "contact": "godman@example.se",
            "basis": "god_man",
            "reference": "T 1234-26",
            "manage": "on",
        },
        follow_redirects=True,
    )
    assert "Registrerat" in response.get_data(as_text=True)
    grant = session.scalars(select(HelperGrant).where(HelperGrant.helper_name == "God Man")).one()
    assert (grant.basis.value, grant.decision_reference, grant.granted_by) == (
        "god_man",
        "T 1234-26",
        "administrator",
    )
    session.commit()
    person = app.test_client()
    log_in(person, "person")
    page = person.post(
        f"/people/{world.person_id}/settings/helpers/{grant.id}/withdraw", follow_redirects=True
    ).get_data(as_text=True)
    assert "upphör genom ett nytt beslut" in page
    session.refresh(grant)
    assert grant.withdrawn_utc is None


def test_the_person_ends_and_starts_care_relationships(app, client, world):
    log_in(client, "caregiver")
    assert client.get(WEEK.format(world.person_id)).status_code == 200
    person = app.test_client()
    log_in(person, "person")
    api = person.get(f"/api/v1/people/{world.person_id}/settings").json
    psyk = next(r for r in api["care_relationships"] if r["provider_id"] == world.unit_a)
    person.post(f"/people/{world.person_id}/settings/relationships/{psyk['id']}/end")
    assert client.get(WEEK.format(world.person_id)).status_code == 403
    person.post(
        f"/people/{world.person_id}/settings/relationships", data={"provider_id": str(world.unit_a)}
    )
    assert client.get(WEEK.format(world.person_id)).status_code == 200


def test_a_caregiver_without_relationship_sees_only_busy_time_and_it_is_audited(app, client, world):
    log_in(client, "caregiver_unrelated")
    response = client.post(
        "/api/v1/busy", json={"personnummer": world.pnr, "from": "2026-12-02", "to": "2026-12-03"}
    )
    assert response.status_code == 200
    assert response.json["busy"] == [
        {"start": "2026-12-02T09:00:00+00:00", "end": "2026-12-02T10:30:00+00:00"}
    ]
    assert "Samtal" not in response.get_data(as_text=True)
    too_long = client.post(
        "/api/v1/busy", json={"personnummer": world.pnr, "from": "2026-12-01", "to": "2027-02-01"}
    )
    assert too_long.json["error"]["code"] == "range.too_long"
    person = app.test_client()
    log_in(person, "person")
    log = person.get(f"/people/{world.person_id}/audit").get_data(as_text=True)
    assert "Såg när du är upptagen, för att boka ett första besök" in log
    assert "Vårdcentralen Teleborg" in log


def test_the_person_sees_every_caregiver_read_in_the_audit_log(app, client, world):
    log_in(client, "caregiver")
    client.get(WEEK.format(world.person_id))
    client.get(f"/people/{world.person_id}/bookings/{world.booking_a}")
    person = app.test_client()
    log_in(person, "person")
    person.get(WEEK.format(world.person_id))  # her own reads are not logged
    rows = person.get(f"/api/v1/people/{world.person_id}/audit?from=2026-01-01&to=2027-01-01").json
    assert [(r["actor"], r["role"], r["unit"], r["action"]) for r in rows] == [
        ("Caregiver", "caregiver", "Vuxenpsykiatrin Växjö", "booking.read"),
        ("Caregiver", "caregiver", "Vuxenpsykiatrin Växjö", "calendar.read"),
    ]
    page = person.get(f"/people/{world.person_id}/audit").get_data(as_text=True)
    assert page.count("Vuxenpsykiatrin Växjö") == 2 and "Tittade i din kalender" in page


def test_an_administrator_exports_the_audit_log_as_csv(app, client, world):
    log_in(client, "caregiver")
    client.get(WEEK.format(world.person_id))
    admin = app.test_client()
    log_in(admin, "admin")
    response = admin.post(
        "/admin/audit-export",
        data={"personnummer": world.pnr, "from": "2026-01-01", "to": "2027-01-01"},
    )
    assert response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("at_utc,actor,role,unit,action")
    assert len(lines) == 2 and "calendar.read" in lines[1]
    assert world.pnr not in response.get_data(as_text=True)


@pytest.mark.databases("sqlite", "postgresql")
def test_audit_rows_cannot_be_changed_or_deleted(client, world, session):
    log_in(client, "caregiver")
    client.get(WEEK.format(world.person_id))
    row = session.scalars(select(AuditEvent)).one()
    session.commit()
    for statement in ("UPDATE audit_event SET detail = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError):
            session.execute(text(statement))
        session.rollback()
    session.refresh(row)
    assert row.detail != "x"


def test_a_protected_persons_address_is_never_shown_to_another_unit(app, client, world, session):
    session.execute(
        update(Person).where(Person.id == world.person_id).values(protected_identity=True)
    )
    session.commit()
    person = app.test_client()
    log_in(person, "person")
    person.post(
        f"/people/{world.person_id}/settings/units/{world.unit_a}", data={"others_level": "full"}
    )
    log_in(client, "caregiver")
    page = week_page(client, world)
    assert "Skyddade personuppgifter" in page
    assert TITLE_B in page and "Hemma" not in page, "details by consent, never the place"
    assert "Sigfridsvägen 9" in page, "the unit's own visit keeps its place"
    booking = client.get(f"/people/{world.person_id}/bookings/{world.booking_b}")
    assert "Hemma" not in booking.get_data(as_text=True)
    api = client.get(f"/api/v1/people/{world.person_id}/calendar?from=2026-11-30&to=2026-12-07")
    assert "Hemma" not in api.get_data(as_text=True)
    assert "Hemma" in week_page(person, world), "the person herself sees everything"


def test_login_with_the_world_password_works_for_every_role(app, world):
    for role in world.users:
        client = app.test_client()
        response = client.post("/login", data={"username": role, "password": PASSWORD})
        assert response.status_code == 302, role
