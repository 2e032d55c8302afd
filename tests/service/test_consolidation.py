"""Consolidation review: "4 besök på 4 olika dagar vecka 49 – 3 kan läggas samma dag"."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from calendar_app.demo import LOGINS, load_demo
from calendar_app.domain.clashes import Preferences, Visit
from calendar_app.domain.consolidation import ReviewVisit, review
from calendar_app.models import Person
from calendar_app.services.booking import DEFAULT_OPENING

SE = ZoneInfo("Europe/Stockholm")


def item(key: str, day: int, hour: int, *, in_person=True, shown=True, native=False):
    start = (
        datetime(2026, 11, 30 + day, hour, tzinfo=SE)
        if day < 1
        else datetime(2026, 12, day, hour, tzinfo=SE)
    )
    return ReviewVisit(
        Visit(
            key, start, start + timedelta(hours=1), f"Besök {key}", "Sigfridsvägen 9, 352 46 Växjö"
        ),
        1,
        "Vuxenpsykiatrin Växjö",
        "0470-58 60 00",
        native,
        in_person,
        shown,
    )


def weeks(items, first=date(2026, 11, 30)):
    return review(
        items,
        Preferences(),
        lambda _pid: DEFAULT_OPENING,
        first,
        weeks=4,
        now=datetime(2026, 11, 1, tzinfo=SE),
    )


def test_four_visits_on_four_days_can_become_one_day():
    # Monday 30 Nov to Thursday 3 Dec, one visit a day
    (week,) = weeks([item("a", 0, 10), item("b", 1, 10), item("c", 2, 10), item("d", 3, 10)])
    assert (week.week, week.visits, week.days, len(week.moves)) == (49, 4, 4, 3)
    assert {m.to_start.astimezone(SE).date() for m in week.moves} == {date(2026, 11, 30)}
    moved = sorted((m.to_start, m.to_end) for m in week.moves)
    assert all(a[1] <= b[0] for a, b in zip(moved, moved[1:], strict=False)), "no new clash"


def test_the_busiest_day_is_the_target_and_phone_visits_need_no_journey():
    (week,) = weeks(
        [item("a", 1, 9), item("b", 1, 13), item("c", 3, 10), item("tel", 2, 10, in_person=False)]
    )
    assert (week.visits, week.days) == (3, 2)
    assert [m.to_start.astimezone(SE).date() for m in week.moves] == [date(2026, 12, 1)]


def test_hidden_visits_count_but_are_not_proposed_for_moving():
    (week,) = weeks([item("a", 1, 9), item("hidden", 3, 10, shown=False)])
    assert (week.days, week.moves) == (2, ())


def test_a_week_with_visits_on_one_day_needs_no_review():
    assert weeks([item("a", 1, 9), item("b", 1, 13)]) == []


def test_the_demo_person_sees_which_days_could_be_merged(client, session, clock):
    load_demo(session, now=clock.now())
    person = session.scalars(select(Person)).one()
    session.commit()
    client.post("/login", data={"username": "alva", "password": LOGINS["alva"][0]})
    page = client.get(f"/people/{person.id}/review").get_data(as_text=True)
    assert "Färre dagar med besök" in page
    assert "olika dagar vecka" in page and "kan läggas samma dag" in page
    assert "Be Vårdcentralen Teleborg att flytta det." in page  # next week: always ahead
