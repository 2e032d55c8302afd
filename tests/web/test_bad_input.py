"""Any JSON body, date or occurrence key a client can send gets a 4xx with a stable code,
never a 500 (issue 21, point 6): bodies nested thousands deep, numbers too large for any
clock, dates in year 1 or 9999 (where a day more or less overflows), keys that are no key."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select

from calendar_app.models import Booking, HelperGrant, Person, Provider, ReminderRule
from tests.support.helpers import do_import, event, vcalendar
from tests.support.world import World, log_in

DEEP = 10_000
FAR_DATES = ["0001-01-01", "0001-01-02", "9999-12-31", "9999-12-25"]


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _api_error(answer: Any) -> str:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.get_data(as_text=True))
    body = answer.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    return body["error"]["code"]


def _page_refused(answer: Any) -> None:
    assert answer.status_code == 400, answer.status_code
    assert "text/html" in answer.content_type


# --- JSON bodies -------------------------------------------------------------------------


def _json_endpoints(world: World) -> list[tuple[str, str, str]]:
    person = world.person_id
    return [
        ("caregiver", "post", f"/api/v1/people/{person}/visits/check"),
        ("caregiver", "post", f"/api/v1/people/{person}/visits"),
        ("caregiver", "post", f"/api/v1/people/{person}/visits/suggest"),
        ("caregiver", "post", "/api/v1/busy"),
        ("caregiver", "put", f"/api/v1/units/{world.unit_a}/opening-hours"),
        ("person", "put", f"/api/v1/people/{person}/preferences"),
        ("person", "put", f"/api/v1/people/{person}/consents/{world.unit_a}"),
        ("person", "post", f"/api/v1/people/{person}/reminders/rules"),
        ("person", "put", f"/api/v1/people/{person}/reminders/settings"),
        ("person", "put", f"/api/v1/people/{person}/reminders/units/{world.unit_a}"),
    ]


@pytest.mark.parametrize("nesting", [_nested_list, _nested_object])
@pytest.mark.parametrize("depth", [DEEP, 600])
def test_a_deeply_nested_body_is_refused_as_bad_json_everywhere(client, world, nesting, depth):
    for role, method, url in _json_endpoints(world):
        client.get("/logout")
        log_in(client, role)
        answer = getattr(client, method)(url, data=nesting(depth), content_type="application/json")
        assert _api_error(answer) == "request.json", url


def test_a_deeply_nested_value_inside_a_body_is_refused_as_bad_json(client, world):
    log_in(client, "caregiver")
    body = (
        '{"date": "2026-12-03", "start": "10:00", "minutes": 30, "title": '
        + _nested_list(DEEP)
        + "}"
    )
    answer = client.post(
        f"/api/v1/people/{world.person_id}/visits/check",
        data=body,
        content_type="application/json",
    )
    assert _api_error(answer) == "request.json"


@pytest.mark.parametrize("value", ["1e400", "-1e400", "NaN", "1" + "0" * 5000, str(10**20)])
def test_numbers_too_large_for_any_clock_get_a_stable_code(client, world, value):
    person = world.person_id
    cases = [
        (
            "caregiver",
            "post",
            f"/api/v1/people/{person}/visits/check",
            '{"date": "2026-12-03", "start": "10:00", "minutes": %s}',
        ),
        (
            "caregiver",
            "post",
            f"/api/v1/people/{person}/visits/suggest",
            '{"from": "2026-12-03", "to": "2026-12-10", "minutes": %s}',
        ),
        ("person", "put", f"/api/v1/people/{person}/preferences", '{"max_visits_per_day": %s}'),
        ("person", "put", f"/api/v1/people/{person}/preferences", '{"travel_buffer_minutes": %s}'),
        (
            "person",
            "put",
            f"/api/v1/people/{person}/preferences",
            '{"windows": [{"kind": "suits", "weekdays": [%s], "start": "08:00", "end": "09:00"}]}',
        ),
        (
            "caregiver",
            "put",
            f"/api/v1/units/{world.unit_a}/opening-hours",
            '{"windows": [{"weekdays": [%s], "start": "08:00", "end": "17:00"}]}',
        ),
        (
            "person",
            "post",
            f"/api/v1/people/{person}/reminders/rules",
            '{"kind": "days_before", "days": %s, "at": "18:00"}',
        ),
        (
            "person",
            "post",
            f"/api/v1/people/{person}/reminders/rules",
            '{"kind": "hours_before", "hours": %s}',
        ),
    ]
    for role, method, url, body in cases:
        client.get("/logout")
        log_in(client, role)
        answer = getattr(client, method)(url, data=body % value, content_type="application/json")
        _api_error(answer)


# --- Dates -------------------------------------------------------------------------------


@pytest.mark.parametrize("day", FAR_DATES)
def test_far_dates_in_the_api_get_a_stable_code(client, world, day):
    person = world.person_id
    log_in(client, "person")
    for name in ("from", "to"):
        query = {"from": "2026-11-01", "to": "2026-12-01", name: day}
        for path in ("calendar", "audit"):
            answer = client.get(f"/api/v1/people/{person}/{path}", query_string=query)
            assert _api_error(answer) in {"date.out_of_range", "range.invalid"}, (path, query)
    client.get("/logout")
    log_in(client, "caregiver")
    bodies = [
        ("/api/v1/busy", {"personnummer": world.pnr, "from": day, "to": "2026-12-01"}),
        ("/api/v1/busy", {"personnummer": world.pnr, "from": "2026-12-01", "to": day}),
        (f"/api/v1/people/{person}/visits/check", {"date": day, "start": "10:00", "minutes": 30}),
        (f"/api/v1/people/{person}/visits", {"date": day, "start": "10:00", "minutes": 30}),
        (f"/api/v1/people/{person}/visits/suggest", {"from": day, "to": day, "minutes": 30}),
        (
            f"/api/v1/people/{person}/visits/suggest",
            {"from": "2026-12-01", "to": day, "minutes": 30},
        ),
    ]
    for url, body in bodies:
        _api_error(client.post(url, json=body))
    moved = client.put(
        f"/api/v1/bookings/{world.native_booking}",
        json={"date": day, "start": "10:00", "minutes": 30},
    )
    _api_error(moved)


@pytest.mark.parametrize("day", FAR_DATES)
def test_the_api_names_a_date_out_of_range_with_its_own_code(client, world, day):
    log_in(client, "person")
    answer = client.get(
        f"/api/v1/people/{world.person_id}/calendar",
        query_string={"from": day, "to": day},
    )
    assert _api_error(answer) == "date.out_of_range"


@pytest.mark.parametrize("day", FAR_DATES)
@pytest.mark.parametrize(
    ("page", "parameter"),
    [("week", "start"), ("today", "day"), ("month", "start"), ("agenda", "from")],
)
def test_far_dates_on_the_persons_pages_answer_400(client, world, day, page, parameter):
    log_in(client, "person")
    answer = client.get(f"/people/{world.person_id}/{page}", query_string={parameter: day})
    _page_refused(answer)


@pytest.mark.parametrize("day", FAR_DATES)
def test_far_dates_on_the_caregivers_pages_answer_400(client, world, day):
    log_in(client, "caregiver")
    _page_refused(client.get("/unit/day", query_string={"day": day}))
    for action in ("check", "suggest", "book"):
        form = {"date": day, "start": "10:00", "minutes": "30", "action": action}
        _page_refused(client.post(f"/people/{world.person_id}/book", data=form))


@pytest.mark.parametrize("days", ["abc", "99999999999", "-5"])
def test_a_bad_number_of_days_to_suggest_in_answers_400(client, world, days):
    log_in(client, "caregiver")
    form = {"date": "2026-12-03", "minutes": "30", "action": "suggest", "days": days}
    _page_refused(client.post(f"/people/{world.person_id}/book", data=form))


@pytest.mark.parametrize("day", FAR_DATES)
def test_a_helper_cannot_be_invited_until_a_far_date(client, world, session, day):
    log_in(client, "person")
    answer = client.post(
        f"/people/{world.person_id}/settings/helpers",
        data={"name": "Nils", "contact": "+46701234567", "view_level": "busy", "until": day},
    )
    # Refused like any bad field of the settings forms: back to the page, with the reason.
    assert answer.status_code == 302
    assert answer.location.endswith(f"/people/{world.person_id}/settings")
    assert session.scalar(select(func.count()).where(HelperGrant.helper_name == "Nils")) == 0


@pytest.mark.parametrize("day", FAR_DATES)
def test_far_dates_in_the_audit_export_answer_400(client, world, day):
    log_in(client, "admin")
    for first, end in ((day, "2026-12-01"), ("2026-11-01", day)):
        export = client.post(
            "/admin/audit-export",
            data={"personnummer": world.pnr, "from": first, "to": end},
        )
        _page_refused(export)


# --- Occurrence keys ---------------------------------------------------------------------


@pytest.fixture
def series(session, world, now) -> int:
    """A weekly series of the person's, imported like any other file."""
    person = session.get(Person, world.person_id)
    do_import(
        session,
        person,
        vcalendar(
            event(
                "weekly",
                ";TZID=Europe/Stockholm:20261124T100000",
                ";TZID=Europe/Stockholm:20261124T110000",
                RRULE="FREQ=WEEKLY",
            )
        ),
        now,
    )
    found = session.scalar(select(Booking.id).where(Booking.uid == "weekly"))
    session.rollback()  # end the read: SQLite lets no one sign in while it is open
    assert found is not None
    return found


@pytest.mark.parametrize(
    "key",
    [
        "abcd",
        "2026",
        "20261399",
        "20261201T250000Z",
        "00010101",
        "99991231",
        "99991231T235959Z",
        "2026-12-01",
        "20261201T100000",
        "２０２６１２０１",
        "20261201\n",
    ],
)
def test_a_malformed_occurrence_key_on_the_visit_page_answers_400(client, world, series, key):
    log_in(client, "person")
    answer = client.get(f"/people/{world.person_id}/bookings/{series}", query_string={"occ": key})
    _page_refused(answer)


def test_a_real_occurrence_key_still_opens_the_visit(client, world, series):
    log_in(client, "person")
    answer = client.get(
        f"/people/{world.person_id}/bookings/{series}", query_string={"occ": "20261201T090000Z"}
    )
    assert answer.status_code == 200


# --- A file with nothing usable ----------------------------------------------------------


def test_a_file_with_no_readable_event_is_refused_on_the_import_page(client, world, session):
    log_in(client, "person")
    data = vcalendar("UID:broken-1\nDTSTART:nonsense", "UID:broken-2\nSUMMARY:no start")
    answer = client.post(
        f"/people/{world.person_id}/import",
        data={"provider": "Mitt arbete", "file": (io.BytesIO(data), "bad.ics")},
        content_type="multipart/form-data",
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    # Swedish once messages.po has the new text; the English original until then.
    assert "Ingen händelse i filen" in page or "No event in the file could be read" in page
    assert "broken-1" in page and "broken-2" in page  # and why each one was unreadable
    assert session.scalar(select(func.count()).where(Provider.name == "Mitt arbete")) == 0


def test_an_empty_calendar_file_is_imported_on_the_import_page(client, world):
    log_in(client, "person")
    answer = client.post(
        f"/people/{world.person_id}/import",
        data={"provider": "Mitt arbete", "file": (io.BytesIO(vcalendar()), "empty.ics")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302


@pytest.mark.parametrize(("field", "value"), [("days", "²"), ("at", "1².00"), ("at", "18.³⁰")])
def test_digits_that_are_no_number_are_refused_in_the_reminders_form(
    client, world, session, field, value
):
    log_in(client, "person")
    form = {"kind": "days_before", "days": "2", "at": "18.00", field: value}
    answer = client.post(f"/people/{world.person_id}/reminders/rules", data=form)
    assert answer.status_code == 302  # back to the page with the reason
    assert session.scalar(select(func.count()).select_from(ReminderRule)) == 0


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_a_text_no_database_can_store_gets_a_stable_code(client, world, text):
    log_in(client, "caregiver")
    body = {"date": "2026-12-03", "start": "10:00", "minutes": 30, "title": text}
    answer = client.post(f"/api/v1/people/{world.person_id}/visits", json=body)
    assert _api_error(answer) == "request.text"
