"""The merged calendar: expansion, DST, ranges, duplicates and overlaps, on a real DB."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_app.domain.errors import DomainError
from calendar_app.models import ProviderKind
from calendar_app.services.calendar import merged_calendar, occurrence_json
from tests.support.helpers import add_person, do_import, event, vcalendar

# Both databases: range queries over stored instants (text on SQLite, timestamptz on
# PostgreSQL) depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

SE = ZoneInfo("Europe/Stockholm")


def cal(session, person, first, end):
    return merged_calendar(session, person.id, first, end, zone=SE, max_days=400)


def weekly_at_ten(uid="w", start="20260309"):
    return event(
        uid,
        f";TZID=Europe/Stockholm:{start}T100000",
        f";TZID=Europe/Stockholm:{start}T110000",
        RRULE="FREQ=WEEKLY;BYDAY=MO",
    )


def test_a_weekly_visit_keeps_its_local_time_over_the_march_dst_weekend(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(weekly_at_ten()), now)
    items = cal(session, person, date(2026, 3, 16), date(2026, 4, 6))
    local = [o.start.astimezone(SE) for o in items]
    assert [d.hour for d in local] == [10, 10, 10]
    assert [o.start.hour for o in items] == [9, 9, 8]  # UTC: +01:00 before, +02:00 after 29 Mar
    assert [d.date() for d in local] == [date(2026, 3, 16), date(2026, 3, 23), date(2026, 3, 30)]


def test_a_weekly_visit_keeps_its_local_time_over_the_october_dst_weekend(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(weekly_at_ten(start="20261005")), now)
    items = cal(session, person, date(2026, 10, 19), date(2026, 11, 2))
    assert [o.start.astimezone(SE).hour for o in items] == [10, 10]
    assert [o.start.hour for o in items] == [8, 9]  # +02:00 before, +01:00 after 25 Oct


def test_the_dst_days_are_23_and_25_hours_long_in_a_day_query(session, now):
    person = add_person(session, now)
    data = vcalendar(
        event(
            "spring-late",
            ";TZID=Europe/Stockholm:20260329T233000",
            ";TZID=Europe/Stockholm:20260329T234500",
        ),
        event(
            "autumn-late",
            ";TZID=Europe/Stockholm:20261025T233000",
            ";TZID=Europe/Stockholm:20261025T234500",
        ),
        event(
            "autumn-early",
            ";TZID=Europe/Stockholm:20261025T000000",
            ";TZID=Europe/Stockholm:20261025T001500",
        ),
    )
    do_import(session, person, data, now)
    assert [o.uid for o in cal(session, person, date(2026, 3, 29), date(2026, 3, 30))] == [
        "spring-late"
    ]
    assert [o.uid for o in cal(session, person, date(2026, 10, 25), date(2026, 10, 26))] == [
        "autumn-early",
        "autumn-late",
    ]


def test_json_times_are_local_with_the_right_offset_on_each_side_of_dst(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(weekly_at_ten(start="20261019")), now)
    items = [
        occurrence_json(o, SE) for o in cal(session, person, date(2026, 10, 19), date(2026, 11, 2))
    ]
    assert [i["start"] for i in items] == ["2026-10-19T10:00:00+02:00", "2026-10-26T10:00:00+01:00"]
    assert items[0]["recurrence_id"] == "2026-10-19T08:00:00Z"


def test_the_hour_that_happens_twice_in_october_is_read_as_its_first_pass(session, now):
    # RFC 5545: an ambiguous local time means the first occurrence (still summer time).
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(
            event(
                "twice",
                ";TZID=Europe/Stockholm:20261025T023000",
                ";TZID=Europe/Stockholm:20261025T024500",
            )
        ),
        now,
    )
    (occ,) = cal(session, person, date(2026, 10, 25), date(2026, 10, 26))
    assert occ.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_exdate_and_a_moved_occurrence_are_honoured(session, now):
    person = add_person(session, now)
    series = weekly_at_ten(start="20261102") + "\nEXDATE;TZID=Europe/Stockholm:20261109T100000"
    moved = event(
        "w",
        ";TZID=Europe/Stockholm:20261118T150000",
        ";TZID=Europe/Stockholm:20261118T160000",
        SUMMARY_X="moved",
    )
    moved += "\nRECURRENCE-ID;TZID=Europe/Stockholm:20261116T100000"
    do_import(session, person, vcalendar(series, moved), now)
    items = cal(session, person, date(2026, 11, 2), date(2026, 11, 30))
    local = [o.start.astimezone(SE).strftime("%m-%d %H") for o in items]
    assert local == ["11-02 10", "11-18 15", "11-23 10"]


def test_a_cancelled_occurrence_is_listed_as_cancelled_and_never_overlaps(session, now):
    person = add_person(session, now)
    cancelled = event(
        "w",
        ";TZID=Europe/Stockholm:20261116T100000",
        ";TZID=Europe/Stockholm:20261116T110000",
        STATUS="CANCELLED",
    )
    cancelled += "\nRECURRENCE-ID;TZID=Europe/Stockholm:20261116T100000"
    clash = event(
        "other", ";TZID=Europe/Stockholm:20261116T103000", ";TZID=Europe/Stockholm:20261116T113000"
    )
    do_import(session, person, vcalendar(weekly_at_ten(start="20261102"), cancelled, clash), now)
    items = {
        (o.uid, o.start.day): o
        for o in cal(session, person, date(2026, 11, 16), date(2026, 11, 17))
    }
    assert items[("w", 16)].status == "cancelled"
    assert items[("w", 16)].overlaps == ()
    assert items[("other", 16)].overlaps == ()


def test_overlaps_are_half_open_so_back_to_back_visits_do_not_clash(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(
            event("a", ":20261202T090000Z", ":20261202T100000Z"),
            event("b", ":20261202T100000Z", ":20261202T110000Z"),
            event("c", ":20261202T103000Z", ":20261202T113000Z"),
        ),
        now,
    )
    overlaps = {
        o.uid: o.overlaps for o in cal(session, person, date(2026, 12, 2), date(2026, 12, 3))
    }
    assert overlaps == {"a": (), "b": ("c",), "c": ("b",)}


def test_occurrences_overlapping_the_range_edges_are_included_and_sorted(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(
            event("late", ":20261202T100000Z", ":20261202T110000Z"),
            event(
                "across-start",
                ";TZID=Europe/Stockholm:20261130T230000",
                ";TZID=Europe/Stockholm:20261201T010000",
            ),
            event(
                "ends-at-start",
                ";TZID=Europe/Stockholm:20261130T220000",
                ";TZID=Europe/Stockholm:20261201T000000",
            ),
            event(
                "starts-at-end",
                ";TZID=Europe/Stockholm:20261203T000000",
                ";TZID=Europe/Stockholm:20261203T010000",
            ),
        ),
        now,
    )
    uids = [o.uid for o in cal(session, person, date(2026, 12, 1), date(2026, 12, 3))]
    assert uids == ["across-start", "late"]


@pytest.mark.parametrize(
    ("first", "end", "code"),
    [
        (date(2026, 1, 1), date(2027, 2, 6), "range.too_long"),
        (date(2026, 1, 2), date(2026, 1, 2), "range.invalid"),
        (date(2026, 1, 2), date(2026, 1, 1), "range.invalid"),
    ],
)
def test_bad_ranges_get_a_clear_code(session, now, first, end, code):
    person = add_person(session, now)
    with pytest.raises(DomainError) as info:
        cal(session, person, first, end)
    assert info.value.code == code


def test_any_period_past_or_future_up_to_400_days_can_be_asked_for(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(weekly_at_ten(start="20200106")), now)
    assert (
        len(cal(session, person, date(2020, 1, 1), date(2021, 2, 4))) == 57
    )  # 52 Mondays in 2020 from 6 Jan, 5 in 2021 to 1 Feb
    assert len(cal(session, person, date(2031, 1, 1), date(2031, 2, 1))) == 4


def test_an_endless_daily_rule_from_long_ago_answers_quickly_for_a_far_window(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(event("daily", ":19000101T100000Z", ":19000101T101500Z", RRULE="FREQ=DAILY")),
        now,
    )
    assert len(cal(session, person, date(2030, 1, 1), date(2031, 1, 1))) == 365


def test_the_same_visit_from_two_sources_of_a_unit_is_shown_once_with_both_provenances(
    session, now
):
    person = add_person(session, now)
    data = vcalendar(event("same", ":20261202T090000Z", ":20261202T100000Z"))
    do_import(session, person, data, now, source="feed")
    do_import(session, person, data, now, source="caldav")
    (occ,) = cal(session, person, date(2026, 12, 2), date(2026, 12, 3))
    assert occ.overlaps == () and occ.likely_duplicate_of == ()
    assert (occ.source, *(p.source for p in occ.also_from)) in (
        ("feed", "caldav"),
        ("caldav", "feed"),
    )


def test_one_units_booking_never_stands_in_for_another_units_with_the_same_uid(session, now):
    """A UID is the sender's to choose: the same one from another unit is kept apart, both
    shown and flagged as a likely duplicate of the other, never joined or dropped."""
    person = add_person(session, now)
    times = (":20261202T090000Z", ":20261202T100000Z")
    do_import(session, person, vcalendar(event("same", *times, summary="Samtal")), now)
    do_import(
        session,
        person,
        vcalendar(event("same", *times, summary="Ändrat av någon annan", LOCATION="Fel plats")),
        now,
        provider="1177 Bokade tider",
        kind=ProviderKind.OTHER,
    )
    found = cal(session, person, date(2026, 12, 2), date(2026, 12, 3))
    assert sorted((o.provider, o.title) for o in found) == [
        ("1177 Bokade tider", "Ändrat av någon annan"),
        ("Vuxenpsykiatrin Växjö", "Samtal"),
    ]
    assert all(o.also_from == () and o.likely_duplicate_of == ("same",) for o in found)


def test_look_alike_visits_with_different_uids_are_flagged_not_dropped(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(event("x1", ":20261202T090000Z", ":20261202T100000Z", summary="Återbesök")),
        now,
    )
    do_import(
        session,
        person,
        vcalendar(event("x2", ":20261202T090000Z", ":20261202T100000Z", summary="återbesök")),
        now,
        provider="Annan enhet",
        kind=ProviderKind.OTHER,
    )
    items = cal(session, person, date(2026, 12, 2), date(2026, 12, 3))
    assert {o.uid: o.likely_duplicate_of for o in items} == {"x1": ("x2",), "x2": ("x1",)}


def test_an_all_day_booking_is_given_as_dates_with_an_exclusive_end(session, now):
    person = add_person(session, now)
    do_import(
        session, person, vcalendar(event("d", ";VALUE=DATE:20261202", ";VALUE=DATE:20261203")), now
    )
    (occ,) = cal(session, person, date(2026, 12, 2), date(2026, 12, 3))
    data = occurrence_json(occ, SE)
    assert (data["start"], data["end"], data["all_day"]) == ("2026-12-02", "2026-12-03", True)
    assert cal(session, person, date(2026, 12, 3), date(2026, 12, 4)) == []


def test_a_weekly_all_day_series_expands_by_dates(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(
            event("d", ";VALUE=DATE:20261201", ";VALUE=DATE:20261202", RRULE="FREQ=WEEKLY;COUNT=3")
        ),
        now,
    )
    items = cal(session, person, date(2026, 11, 30), date(2026, 12, 31))
    assert [o.start_date for o in items] == [
        date(2026, 12, 1),
        date(2026, 12, 8),
        date(2026, 12, 15),
    ]
    assert items[0].end - items[0].start == timedelta(days=1)


def test_a_repeated_query_sees_every_change_made_since(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", ":20261202T090000Z", ":20261202T100000Z")), now)
    first = cal(session, person, date(2026, 12, 1), date(2026, 12, 8))
    assert [o.status for o in first] == ["confirmed"]
    do_import(session, person, vcalendar(event("b", ":20261203T090000Z", ":20261203T100000Z")), now)
    assert [
        (o.uid, o.status) for o in cal(session, person, date(2026, 12, 1), date(2026, 12, 8))
    ] == [("a", "cancelled"), ("b", "confirmed")]
