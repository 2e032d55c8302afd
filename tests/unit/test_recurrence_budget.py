"""Recurrence expansion has a budget (issue 21, point 6): a rule that would cost more is
skipped with a reason on import and shows nothing in a view, found out without expanding
it; the series care calendars really have are not touched by it."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from calendar_app.domain import recurrence
from calendar_app.domain.recurrence import MAX_PER_YEAR, Budget, expand
from calendar_app.providers import ics
from tests.support.helpers import event, vcalendar

HOURS = ",".join(str(h) for h in range(24))
MINUTES = ",".join(str(m) for m in range(60))
# 258 bytes: 1,440 occurrences a day, 525,600 a year.
EVERY_MINUTE = f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}"
NEVER = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
START = ";TZID=Europe/Stockholm:20260105T090000"
END = ";TZID=Europe/Stockholm:20260105T093000"
YEAR_2026 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 12, tzinfo=UTC))


def _parse(*rules: str):
    events = [event(f"s{i}", START, END, RRULE=rule) for i, rule in enumerate(rules)]
    return ics.parse(vcalendar(*events), default_zone="Europe/Stockholm")


def _series(rule: str) -> str:
    """The stored text of a series, as if an earlier version had imported it."""
    return (
        f"BEGIN:VEVENT\r\nUID:s\r\nDTSTART{START}\r\nDTEND{END}\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"
    )


@pytest.fixture(autouse=True)
def fresh_caches():
    recurrence._year.cache_clear()
    recurrence._query.cache_clear()


@pytest.fixture
def pulled(monkeypatch):
    """How many occurrences were taken from dateutil's rule engine, in all."""
    counter = {"n": 0}
    real = recurrence._rule_instants

    def counting(*args):
        for instant in real(*args):
            counter["n"] += 1
            yield instant

    monkeypatch.setattr(recurrence, "_rule_instants", counting)
    return counter


@pytest.fixture
def library_unused(monkeypatch):
    """Fail if recurring-ical-events is asked to expand anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("the library was asked to expand a rule over budget")

    monkeypatch.setattr(recurrence.recurring_ical_events, "of", refuse)


def test_a_rule_with_every_minute_of_the_day_is_skipped_on_import_with_its_code(
    pulled, library_unused
):
    read = _parse(EVERY_MINUTE)
    assert read.bookings == ()
    [skipped] = read.skipped
    assert (skipped.uid, skipped.code) == ("s0", "event.too_many_occurrences")
    # Found out lazily: the walk stopped just past the budget, never expanding the year.
    assert pulled["n"] <= MAX_PER_YEAR + 1


def test_a_rule_with_every_minute_of_the_day_shows_nothing_in_a_view(pulled, library_unused):
    assert expand([_series(EVERY_MINUTE)], *YEAR_2026) == []
    assert pulled["n"] <= MAX_PER_YEAR + 1


def test_other_events_of_the_file_are_imported_next_to_the_skipped_rule():
    read = _parse(EVERY_MINUTE, "FREQ=WEEKLY;BYDAY=MO")
    assert [b.uid for b in read.bookings] == ["s1"]
    assert [s.uid for s in read.skipped] == ["s0"]


def test_a_rule_that_matches_no_date_is_skipped_without_walking_to_the_year_9999(pulled):
    read = _parse(NEVER)
    assert read.bookings == ()
    assert [s.code for s in read.skipped] == ["event.rrule_invalid"]
    assert expand([_series(NEVER)], *YEAR_2026) == []


def test_a_daily_visit_for_400_days_is_expanded_whole():
    [booking] = _parse("FREQ=DAILY;COUNT=400").bookings
    assert booking.range_end_utc == datetime(2027, 2, 8, 8, 30, tzinfo=UTC)
    assert booking.recurrence_ics is not None
    occurrences = expand(
        [booking.recurrence_ics], datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    )
    assert len(occurrences) == 400


def test_weekly_and_daily_series_are_unaffected():
    weekly = expand([_series("FREQ=WEEKLY;BYDAY=MO,TH")], *YEAR_2026)
    daily = expand([_series("FREQ=DAILY")], *YEAR_2026)
    assert len(weekly) == 104  # 5 January to 31 December: 52 Mondays and 52 Thursdays
    assert len(daily) == 361


def test_four_home_care_visits_a_day_for_a_year_are_within_budget():
    [booking] = _parse("FREQ=DAILY;BYHOUR=8,12,17,21").bookings
    assert booking.range_end_utc is None
    assert len(expand([_series("FREQ=DAILY;BYHOUR=8,12,17,21")], *YEAR_2026)) == 361 * 4


def test_a_long_series_walked_for_centuries_shows_nothing_far_ahead():
    far = (datetime(2199, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, 12, tzinfo=UTC))
    assert expand([_series("FREQ=DAILY")], *far) == []
    assert len(expand([_series("FREQ=WEEKLY")], *far)) == 52


def test_a_view_shares_one_budget_among_its_series():
    first, second = _series("FREQ=WEEKLY;BYDAY=MO"), _series("FREQ=WEEKLY;BYDAY=TU")
    measuring = Budget(10**6)
    expand([first], *YEAR_2026, budget=measuring)
    enough_for_one = Budget(10**6 - measuring.left)
    assert len(expand([first], *YEAR_2026, budget=enough_for_one)) == 52
    assert expand([second], *YEAR_2026, budget=enough_for_one) == []


def test_an_import_shares_one_budget_among_its_series(monkeypatch):
    monkeypatch.setattr(ics, "MAX_STEPS_PER_IMPORT", 1_000)
    read = _parse("FREQ=WEEKLY", "FREQ=WEEKLY", "FREQ=WEEKLY")
    assert [b.uid for b in read.bookings] == ["s0", "s1"]
    [skipped] = read.skipped
    assert (skipped.uid, skipped.code) == ("s2", "event.too_many_occurrences")
    assert "together" in skipped.reason


@pytest.mark.parametrize(
    "rule",
    ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=DAILY;INTERVAL=3"],
)
def test_measuring_moves_a_rule_by_whole_calendar_cycles_without_changing_its_dates(rule):
    parsed = recurrence._parsed(_series(rule)).get("RRULE")
    start = datetime(2026, 1, 5, 9)
    moved = recurrence._rule_instants(parsed, start, 7600)
    unmoved = recurrence._rule_instants(parsed, start, 0)
    assert list(islice(moved, 40)) == list(islice(unmoved, 40))
