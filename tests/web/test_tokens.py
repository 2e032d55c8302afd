"""API tokens: made by an administrator, shown once, bound to a unit and scopes,
refused at once when revoked."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from calendar_app.cli import main
from calendar_app.models import ApiToken, AuditEvent, Booking
from calendar_app.services import tokens
from calendar_app.web.admin import SCOPE_LABELS
from calendar_app.web.api import TOKEN_SCOPES
from tests.conftest import NOW
from tests.support.world import build_world, log_in

SECRET = re.compile(r"pk_[A-Za-z0-9_-]{40,}")
FREE_SLOT = {"date": "2026-12-02", "start": "13:00", "minutes": 30}


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _make(session, world, *scopes: str, name: str = "Journalsystemet") -> str:
    made = tokens.create_token(
        session,
        name=name,
        provider_id=world.unit_a,
        scopes=list(scopes),
        created_by="test",
        now=NOW,
    )
    return made.secret


def test_an_administrator_makes_a_token_that_is_shown_once_and_stored_hashed(
    app, client, session, now
):
    world = build_world(session, now)
    log_in(client, "admin")

    made = client.post(
        "/admin/api-tokens",
        data={
            "name": "Journalsystemet",
            "provider_id": str(world.unit_a),
            "scope": ["calendar:read"],
        },
    )

    assert made.status_code == 201
    page = made.get_data(as_text=True)
    secret = SECRET.search(page).group(0)
    assert "visas bara den här gången" in page
    row = session.scalars(select(ApiToken)).one()
    session.commit()
    stored = " ".join(str(value) for value in vars(row).values())
    assert secret not in stored and row.token_hash != secret and len(row.token_hash) == 64
    assert (row.provider_id, row.scopes) == (world.unit_a, "calendar:read")
    listing = client.get("/admin/api-tokens").get_data(as_text=True)
    assert secret not in listing and row.prefix in listing and "Journalsystemet" in listing
    assert client.get("/api/v1/me", headers=_bearer(secret)).get_json() == {
        "token": "Journalsystemet",
        "role": "api_token",
        "unit_id": world.unit_a,
        "unit": "Vuxenpsykiatrin Växjö",
        "scopes": ["calendar:read"],
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "X"}, "Välj minst en behörighet"),
        ({"name": "", "scope": ["calendar:read"]}, "Ge nyckeln ett namn"),
        ({"name": "X", "scope": ["everything"]}, "Okänd behörighet"),
    ],
)
def test_a_bad_token_form_is_refused_in_swedish_and_makes_nothing(
    client, session, now, form, message
):
    world = build_world(session, now)
    log_in(client, "admin")
    response = client.post("/admin/api-tokens", data={"provider_id": world.unit_a, **form})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_a_token_reads_for_its_unit_and_the_read_is_audited_under_its_name(
    app, client, session, now
):
    world = build_world(session, now)
    secret = _make(session, world, "calendar:read")

    response = client.get(
        f"/api/v1/people/{world.person_id}/calendar?from=2026-12-01&to=2026-12-08",
        headers=_bearer(secret),
    )

    assert response.status_code == 200
    assert [o["title"] for o in response.get_json()["occurrences"]][:1] == ["Samtal"]
    audit = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    row = session.scalars(select(ApiToken)).one()
    session.commit()
    assert audit.actor_label == "API-nyckel Journalsystemet"
    assert audit.actor_unit == "Vuxenpsykiatrin Växjö" and audit.actor_user_id is None
    assert row.last_used_utc is not None
    # A person the unit has no care relationship with stays closed.
    other = client.get(
        f"/api/v1/people/{world.other_person_id}/calendar?from=2026-12-01&to=2026-12-08",
        headers=_bearer(secret),
    )
    assert other.status_code == 403


def test_a_token_may_only_do_what_its_scopes_say(app, client, session, now):
    world = build_world(session, now)
    reader = _make(session, world, "calendar:read", name="Läsare")
    booker = _make(session, world, "visits:write", name="Bokare")
    visits = f"/api/v1/people/{world.person_id}/visits"

    refused = client.post(visits, json=FREE_SLOT, headers=_bearer(reader))
    booked = client.post(visits, json=FREE_SLOT, headers=_bearer(booker))

    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "token.scope"
    assert booked.status_code == 201, booked.get_json()
    booking = session.get(Booking, booked.get_json()["booking_id"])
    session.commit()
    assert booking.provider_id == world.unit_a and booking.booked_by_user_id is None
    # The person's own parts of the API are never for tokens, whatever their scopes.
    for path in ("settings", "preferences", "audit?from=2026-01-01&to=2027-01-01"):
        answer = client.get(f"/api/v1/people/{world.person_id}/{path}", headers=_bearer(reader))
        assert answer.status_code == 403, path


def test_a_revoked_token_is_refused_at_once(app, client, session, now):
    world = build_world(session, now)
    secret = _make(session, world, "calendar:read")
    assert client.get("/api/v1/me", headers=_bearer(secret)).status_code == 200
    token_id = session.scalars(select(ApiToken.id)).one()
    session.commit()
    admin = app.test_client()
    log_in(admin, "admin")

    revoked = admin.post(f"/admin/api-tokens/{token_id}/revoke", follow_redirects=True)

    assert "Nyckeln Journalsystemet är spärrad" in revoked.get_data(as_text=True)
    refused = client.get("/api/v1/me", headers=_bearer(secret))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "auth.token_invalid"


@pytest.mark.parametrize(
    "header",
    ["Bearer pk_made-up", "Bearer ", "Basic dXNlcjpwYXNz", "pk_no_scheme", "Bearer " + "x" * 500],
)
def test_unknown_or_malformed_tokens_get_the_same_answer(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "auth.token_invalid"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_never_works_in_a_url_or_on_the_pages(app, client, session, now):
    world = build_world(session, now)
    secret = _make(session, world, "calendar:read")
    assert client.get(f"/api/v1/me?access_token={secret}").status_code == 401
    page = client.get(f"/people/{world.person_id}/week", headers=_bearer(secret))
    assert page.status_code == 302 and "/login" in page.location


def test_every_scope_has_a_label_and_every_api_scope_exists():
    assert set(SCOPE_LABELS) == set(tokens.SCOPES)
    assert set(TOKEN_SCOPES.values()) - {""} <= set(tokens.SCOPES)


def test_the_command_line_makes_lists_and_revokes_tokens(app, session, now):
    world = build_world(session, now)
    runner = app.test_cli_runner()

    made = runner.invoke(
        main,
        [
            "token",
            "create",
            "--unit",
            "Vuxenpsykiatrin Växjö",
            "--name",
            "Skript",
            "--scope",
            "calendar:read",
            "--scope",
            "visits:write",
        ],
    )
    assert made.exit_code == 0, made.output
    secret = made.output.strip()
    assert SECRET.fullmatch(secret)
    listed = runner.invoke(main, ["token", "list"])
    assert "Skript" in listed.output and "calendar:read visits:write" in listed.output
    assert secret not in listed.output and "active" in listed.output
    token_id = listed.output.split("\t")[0]

    client = app.test_client()
    assert client.get("/api/v1/me", headers=_bearer(secret)).status_code == 200
    assert runner.invoke(main, ["token", "revoke", token_id]).exit_code == 0
    assert client.get("/api/v1/me", headers=_bearer(secret)).status_code == 401
    bad = runner.invoke(
        main, ["token", "create", "--unit", "Nowhere", "--name", "X", "--scope", "calendar:read"]
    )
    assert bad.exit_code == 1 and "error: unit.not_found" in bad.output
    assert world.unit_a
