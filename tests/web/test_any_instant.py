"""The service at awkward instants: the evening before each clock change, New Year's Eve and
29 February. The app's clock is set to the instant; the demo is placed around it as
`make run` places it; the person's week, a caregiver's booking, a reminder and the feed
must all follow the clock, never the day the suite runs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import select

from calendar_app.demo import LOGINS, PERSONNUMMER, load_demo
from calendar_app.models import Person, Reminder, ReminderState
from calendar_app.services import feeds
from calendar_app.services.access import Actor

SE = ZoneInfo("Europe/Stockholm")
INSTANTS = {
    "evening-before-spring-forward": datetime(2027, 3, 27, 21, 30, tzinfo=SE),
    "evening-before-fall-back": datetime(2027, 10, 30, 22, 30, tzinfo=SE),
    "new-years-eve": datetime(2026, 12, 31, 23, 30, tzinfo=SE),
    "leap-day": datetime(2028, 2, 29, 12, 0, tzinfo=SE),
}


@pytest.fixture(params=INSTANTS.values(), ids=INSTANTS.keys())
def instant(request, clock) -> datetime:
    """The app's clock set to one awkward instant."""
    clock.set(request.param)
    return request.param


@pytest.fixture
def person_id(session, instant) -> int:
    load_demo(session, now=instant)
    found = session.scalars(select(Person.id).where(Person.personnummer == PERSONNUMMER)).one()
    session.commit()
    return found


def _log_in(client, username: str) -> None:
    answer = client.post("/login", data={"username": username, "password": LOGINS[username][0]})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]


def test_this_week_is_the_week_of_the_apps_clock(client, person_id, instant):
    _log_in(client, "alva")
    today = instant.date()
    monday = today - timedelta(days=today.weekday())
    page = client.get(f"/people/{person_id}/week").get_data(as_text=True)
    assert f"Vecka {monday.isocalendar().week}" in page
    # The demo's overlap is on this week's Wednesday, placed from the same clock.
    assert "Återbesök, sjuksköterska" in page and "Möte med personligt ombud" in page
    today_page = client.get(f"/people/{person_id}/today").get_data(as_text=True)
    assert f"{today.day} " in today_page


def test_a_caregiver_books_ahead_but_not_days_back(client, person_id, instant):
    _log_in(client, "karin")
    path = f"/api/v1/people/{person_id}/visits"
    tomorrow = instant.date() + timedelta(days=1)
    days_back = instant.date() - timedelta(days=2)

    booked = client.post(path, json={"date": tomorrow.isoformat(), "start": "17:00", "minutes": 30})
    refused = client.post(
        path, json={"date": days_back.isoformat(), "start": "17:00", "minutes": 30}
    )

    assert booked.status_code == 201, booked.get_json()
    start = datetime.fromisoformat(booked.get_json()["start"])
    assert start.astimezone(SE).replace(tzinfo=None) == datetime.combine(tomorrow, time(17))
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "visit.date"


def test_a_reminder_the_day_before_at_six_follows_the_local_clock(
    client, session, person_id, instant
):
    _log_in(client, "alva")
    reminders = f"/api/v1/people/{person_id}/reminders"
    rule = {"kind": "days_before", "days": 1, "at": "18:00"}
    assert client.post(f"{reminders}/rules", json=rule).status_code == 201
    client.post("/logout")
    _log_in(client, "karin")
    visit_day = instant.date() + timedelta(days=2)
    made = client.post(
        f"/api/v1/people/{person_id}/visits",
        json={"date": visit_day.isoformat(), "start": "17:00", "minutes": 30},
    )
    assert made.status_code == 201, made.get_json()

    planned = session.scalars(
        select(Reminder.send_at_utc).where(
            Reminder.booking_id == made.get_json()["booking_id"],
            Reminder.state == ReminderState.PLANNED,
        )
    ).all()
    session.commit()
    expected = datetime.combine(visit_day - timedelta(days=1), time(18), SE)
    assert planned and {at.astimezone(SE) for at in planned} == {expected}
    assert all(at > instant for at in planned)


def test_the_feed_shows_this_weeks_visits_at_their_local_time(client, session, person_id, instant):
    made = feeds.create_feed(session, Actor.operator(), person_id, level="full", now=instant)
    session.commit()
    answer = client.get(feeds.feed_path(made.token))
    assert answer.status_code == 200
    today = instant.date()
    wednesday = today - timedelta(days=today.weekday()) + timedelta(days=2)
    starts = {
        str(event.get("SUMMARY")): event.decoded("DTSTART")
        for event in icalendar.Calendar.from_ical(answer.data).walk("VEVENT")
    }
    clinic = starts["Återbesök, sjuksköterska"]
    assert clinic.astimezone(SE) == datetime.combine(wednesday, time(10), SE)


def test_the_instants_are_what_their_names_say():
    """The instants themselves, so a later edit cannot quietly make them ordinary."""
    spring, autumn = INSTANTS["evening-before-spring-forward"], INSTANTS["evening-before-fall-back"]
    assert spring.utcoffset() == timedelta(hours=1)
    assert (spring + timedelta(days=1)).utcoffset() == timedelta(hours=2)
    assert autumn.utcoffset() == timedelta(hours=2)
    assert (autumn + timedelta(days=1)).utcoffset() == timedelta(hours=1)
    assert INSTANTS["new-years-eve"].date() == date(2026, 12, 31)
    assert INSTANTS["leap-day"].date() == date(2028, 2, 29)
