"""The clash rules on their own (pure domain, no database)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_app.domain.clashes import (
    Preferences,
    Visit,
    WeeklyWindow,
    check,
    local_instant,
    postal_town,
    swedish_holidays,
)
from calendar_app.domain.errors import DomainError

SE = ZoneInfo("Europe/Stockholm")
PSYK = "Sigfridsvägen 9, 352 46 Växjö"
VC = "Bollvägen 2, 352 55 Växjö"
LJUNGBY = "Storgatan 1, 341 30 Ljungby"
WEEKDAYS = frozenset(range(5))


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SE)


def visit(key, start, minutes=60, location=PSYK, cancelled=False):
    return Visit(
        key, start, start + timedelta(minutes=minutes), f"label {key}", location, cancelled
    )


def kinds(warnings):
    return sorted((w.kind, w.hard, w.other_key) for w in warnings)


def test_back_to_back_is_no_clash_and_an_overlap_is_a_hard_one():
    existing = [visit("a", at(2, 10))]
    assert kinds(check(at(2, 11), at(2, 12), PSYK, existing, Preferences())) == []
    assert kinds(check(at(2, 10, 30), at(2, 11, 30), PSYK, existing, Preferences())) == [
        ("overlap", True, "a")
    ]


def test_a_cancelled_booking_never_clashes():
    existing = [visit("a", at(2, 10), cancelled=True)]
    assert check(at(2, 10), at(2, 11), PSYK, existing, Preferences()) == []


def test_a_busy_period_the_person_marked_is_a_hard_clash_named_by_its_label():
    prefs = Preferences(busy=(("Arbete", WeeklyWindow(WEEKDAYS, time(8), time(16))),))
    (warning,) = check(at(2, 15), at(2, 16), "", [], prefs)
    assert (warning.kind, warning.hard, warning.other) == ("busy_period", True, "Arbete")
    assert check(at(2, 16), at(2, 17), "", [], prefs) == []  # back-to-back with work
    assert check(at(5, 10), at(5, 11), "", [], prefs) == []  # Saturday


def test_travel_time_depends_on_address_then_town():
    prefs = Preferences(travel_buffer=timedelta(minutes=60), same_town_buffer=timedelta(minutes=20))
    existing = [visit("a", at(2, 10))]  # ends 11:00 at the clinic
    assert check(at(2, 11), at(2, 12), "sigfridsvägen 9 , 352 46  VÄXJÖ", existing, prefs) == []
    assert kinds(check(at(2, 11, 10), at(2, 12), VC, existing, prefs)) == [("travel", False, "a")]
    assert check(at(2, 11, 20), at(2, 12), VC, existing, prefs) == []
    assert kinds(check(at(2, 11, 45), at(2, 12, 30), LJUNGBY, existing, prefs)) == [
        ("travel", False, "a")
    ]
    assert check(at(2, 12), at(2, 13), LJUNGBY, existing, prefs) == []
    assert check(at(2, 11), at(2, 12), "", existing, prefs) == [], "phone visit: no travel"


def test_travel_is_also_checked_before_the_next_visit():
    existing = [visit("b", at(2, 13), location=LJUNGBY)]
    assert kinds(check(at(2, 11), at(2, 12, 30), PSYK, existing, Preferences())) == [
        ("travel", False, "b")
    ]


def test_more_visits_than_the_person_manages_in_a_day_is_a_soft_warning():
    prefs = Preferences(max_visits_per_day=2)
    existing = [visit("a", at(2, 8)), visit("b", at(2, 10))]
    (warning,) = check(at(2, 14), at(2, 15), PSYK, existing, prefs)
    assert (warning.kind, warning.hard, warning.other) == ("max_per_day", False, "3")
    assert check(at(3, 14), at(3, 15), PSYK, existing, prefs) == []


def test_outside_the_times_that_suit_is_a_soft_warning():
    prefs = Preferences(suitable=(WeeklyWindow(WEEKDAYS, time(18), time(21)),))
    assert check(at(2, 18), at(2, 19), "", [], prefs) == []
    (warning,) = check(at(2, 10), at(2, 11), "", [], prefs)
    assert (warning.kind, warning.hard) == ("outside_suitable", False)
    assert kinds(check(at(2, 20, 30), at(2, 21, 30), "", [], prefs)) == [
        ("outside_suitable", False, None)
    ]


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 6, 19), "Midsommarafton"),
        (date(2026, 12, 24), "Julafton"),
        (date(2026, 12, 31), "Nyårsafton"),
        (date(2026, 4, 6), "Annandag påsk"),
        (date(2026, 6, 6), "Nationaldagen"),
    ],
)
def test_swedish_holidays_include_the_de_facto_days_off(day, name):
    assert swedish_holidays(day.year)[day] == name
    start = datetime.combine(day, time(10), tzinfo=SE)
    (warning,) = check(start, start + timedelta(hours=1), "", [], Preferences())
    assert (warning.kind, warning.hard, warning.other) == ("holiday", False, name)


def test_an_ordinary_sunday_is_not_a_holiday():
    assert date(2026, 12, 6) not in swedish_holidays(2026)
    assert check(at(6, 10), at(6, 11), "", [], Preferences()) == []


def test_a_time_in_the_march_gap_is_refused_with_a_question():
    with pytest.raises(DomainError) as info:
        local_instant(date(2026, 3, 29), time(2, 30), SE)
    assert info.value.code == "time.nonexistent" and "?" in info.value.message


def test_a_time_in_the_repeated_october_hour_is_refused_with_a_question():
    with pytest.raises(DomainError) as info:
        local_instant(date(2026, 10, 25), time(2, 30), SE)
    assert info.value.code == "time.ambiguous" and "?" in info.value.message


def test_ordinary_times_on_the_dst_days_are_accepted():
    assert local_instant(date(2026, 3, 29), time(3, 30), SE) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    assert local_instant(date(2026, 10, 25), time(3, 30), SE) == datetime(
        2026, 10, 25, 2, 30, tzinfo=UTC
    )


def test_a_visit_that_ends_before_it_starts_is_refused():
    with pytest.raises(DomainError) as info:
        check(at(2, 11), at(2, 10), "", [], Preferences())
    assert info.value.code == "visit.end_before_start"


@pytest.mark.parametrize(
    ("address", "town"),
    [
        (PSYK, "växjö"),
        ("Storgatan 1, 34130 Ljungby", "ljungby"),
        ("Hemma", ""),
        ("Box 1223, 351 12 VÄXJÖ", "växjö"),
    ],
)
def test_postal_towns_are_read_from_swedish_addresses(address, town):
    assert postal_town(address) == town


def test_every_warning_names_what_it_clashes_with_at_the_given_label():
    existing = [Visit("x", at(2, 10), at(2, 11), "Upptagen", PSYK)]
    (warning,) = check(at(2, 10), at(2, 11), PSYK, existing, Preferences())
    assert warning.other == "Upptagen"


def test_a_phone_visit_needs_no_travel_time():
    phone = Visit("tel", at(2, 10), at(2, 11), "Telefonsamtal", "Telefon", travels=False)
    assert check(at(2, 11), at(2, 12), LJUNGBY, [phone], Preferences()) == []
