"""Reaching a person needs a care relationship, or her personnummer for a unit's first visit
(busy time only, audited). A numeric id opens nothing by itself, for a signed-in caregiver
or a unit's API token, and a link with an id tells nothing to whoever may not see her."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from calendar_app.models import AuditEvent, CareRelationship
from calendar_app.services import tokens
from tests.support.world import log_in

FREE = {"date": "2026-11-25", "start": "14:00", "minutes": 30}


def _relationships(session, world) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(CareRelationship)
        .where(
            CareRelationship.person_id == world.person_id,
            CareRelationship.provider_id == world.unit_c,
            CareRelationship.ended_utc.is_(None),
        )
    )
    session.commit()
    return int(count or 0)


def _token(session, provider_id: int, now) -> dict[str, str]:
    made = tokens.create_token(
        session,
        name="Planering",
        provider_id=provider_id,
        scopes=list(tokens.SCOPES),
        created_by="test",
        now=now,
    )
    return {"Authorization": f"Bearer {made.secret}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/people/{p}/week", None),
        ("get", "/people/{p}/book", None),
        ("post", "/people/{p}/book", {**FREE, "action": "book"}),
        ("post", "/api/v1/people/{p}/visits/check", FREE),
        ("post", "/api/v1/people/{p}/visits", FREE),
        ("post", "/api/v1/people/{p}/visits/suggest", {"minutes": 30, "from": "2026-11-25",
                                                       "to": "2026-11-26"}),
        ("get", "/api/v1/people/{p}/calendar?from=2026-11-23&to=2026-11-30", None),
    ],
)  # fmt: skip
def test_a_unit_without_a_relationship_reaches_nobody_by_number(
    client, session, world, method, path, body
):
    log_in(client, "caregiver_unrelated")
    for person_id in (world.person_id, 999_999):  # a real id and one naming nobody
        url = path.format(p=person_id)
        if method == "get":
            answer = client.get(url)
        elif url.startswith("/api/"):
            answer = client.post(url, json=body)
        else:
            answer = client.post(url, data=body)
        assert answer.status_code == 403, (url, answer.status_code)
    assert _relationships(session, world) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_units_api_token_reaches_nobody_by_number_either(client, session, world, now):
    headers = _token(session, world.unit_c, now)
    for path in (
        f"/api/v1/people/{world.person_id}/visits",
        f"/api/v1/people/{world.person_id}/visits/check",
    ):
        assert client.post(path, json=FREE, headers=headers).status_code == 403
    assert _relationships(session, world) == 0


def test_a_first_visit_goes_by_personnummer_sees_busy_time_and_opens_the_calendar(
    client, session, world
):
    log_in(client, "caregiver_unrelated")
    body = {**FREE, "personnummer": world.pnr}
    check = client.post("/api/v1/first-visits/check", json=body)
    assert check.status_code == 200 and check.json["warnings"] == []
    clash = client.post(
        "/api/v1/first-visits/check",
        json={**body, "start": "10:30", "date": "2026-12-02"},  # the world's visits
    )
    assert {w["other"] for w in clash.json["warnings"]} == {"Upptagen"}
    assert client.get(f"/people/{world.person_id}/week").status_code == 403  # not yet

    booked = client.post("/api/v1/first-visits", json=body)

    assert booked.status_code == 201 and booked.json["person_id"] == world.person_id
    assert _relationships(session, world) == 1
    week = client.get(f"/people/{world.person_id}/week?start=2026-11-23")
    assert week.status_code == 200
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.person_id == world.person_id)
    ).all()
    session.commit()
    assert actions.count("calendar.busy_lookup") == 3  # two checks and the booking's own


def test_the_first_visit_page_books_by_personnummer_never_in_the_address(client, session, world):
    log_in(client, "caregiver_unrelated")
    page = client.get("/unit/first-visit")
    assert page.status_code == 200 and 'name="personnummer"' in page.get_data(as_text=True)
    form = {**{k: str(v) for k, v in FREE.items()}, "personnummer": world.pnr}
    checked = client.post("/unit/first-visit", data={**form, "action": "check"})
    assert checked.status_code == 200
    booked = client.post("/unit/first-visit", data={**form, "action": "book"})
    assert booked.status_code == 302
    assert booked.location.startswith(f"/people/{world.person_id}/week")
    assert world.pnr not in booked.location and world.pnr[2:] not in booked.location
    assert _relationships(session, world) == 1


@pytest.mark.parametrize(
    ("pnr", "code"),
    [("19900101-2386", 400), ("", 400), ("198503041238", 400)],
    ids=["bad-checksum", "empty", "nobody"],
)
def test_a_first_visit_for_a_bad_or_unknown_personnummer_is_refused_clearly(
    client, session, world, pnr, code
):
    log_in(client, "caregiver_unrelated")
    answer = client.post("/api/v1/first-visits", json={**FREE, "personnummer": pnr})
    assert answer.status_code in (400, 404)
    assert answer.json["error"]["code"].startswith("personnummer") or answer.json["error"][
        "code"
    ] in ("person.not_found",)
    assert _relationships(session, world) == 0


@pytest.mark.parametrize(
    "role", ["other_person", "caregiver_unrelated", "helper_reminders", "admin"]
)
def test_a_short_link_tells_nobody_else_whose_booking_it_is(client, world, role):
    log_in(client, role)
    answer = client.get(f"/b/{world.booking_a}")
    missing = client.get("/b/999999")
    assert answer.status_code == missing.status_code == 404
    # The same page but for the address asked for (the language switch returns there).
    assert answer.get_data(as_text=True).replace(f"/b/{world.booking_a}", "/b/X") == (
        missing.get_data(as_text=True).replace("/b/999999", "/b/X")
    )


def test_a_short_link_takes_whoever_may_see_the_booking_to_it(client, world):
    log_in(client, "helper_busy")
    answer = client.get(f"/b/{world.booking_a}")
    assert answer.status_code == 302
    assert answer.location == f"/people/{world.person_id}/bookings/{world.booking_a}"
