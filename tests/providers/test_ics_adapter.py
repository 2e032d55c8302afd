"""The iCalendar adapter on its own: what it accepts, how it normalises, what it refuses."""

from datetime import UTC, date, datetime

import pytest

from calendar_app.providers import ProviderError
from calendar_app.providers.ics import parse
from tests.conftest import ICS
from tests.support.helpers import event, vcalendar

ZONE = "Europe/Stockholm"


def one(data: bytes):
    result = parse(data, default_zone=ZONE)
    assert len(result.bookings) == 1, result
    return result.bookings[0]


def test_floating_times_are_read_in_the_persons_zone():
    booking = one(vcalendar(event("a", ":20260302T100000", ":20260302T110000")))
    assert booking.start_utc == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert booking.tzid == ZONE


def test_utc_times_stay_utc():
    booking = one(vcalendar(event("a", ":20260302T100000Z", ":20260302T110000Z")))
    assert booking.start_utc == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert booking.tzid == "UTC"


def test_windows_zone_names_from_exchange_become_iana_zones():
    result = parse(
        (ICS / "icalendar/issue_836_do_not_quote_tzid.ics").read_bytes(), default_zone=ZONE
    )
    booking = result.bookings[0]
    assert booking.tzid == "America/New_York"
    # 17:00 Eastern on 28 Oct 2024 is EDT (UTC-4)
    assert booking.start_utc == datetime(2024, 10, 28, 21, tzinfo=UTC)


def test_x_wr_timezone_gives_floating_times_their_zone():
    data = ICS / "recurring-ical-events/issue_86_x_wr_timezone_without_time_zone_in_dt.ics"
    booking = parse(data.read_bytes(), default_zone="Asia/Tokyo").bookings[0]
    assert booking.tzid not in (None, "Asia/Tokyo", "UTC")


def test_all_day_events_keep_their_dates_and_start_at_local_midnight():
    booking = one(vcalendar(event("a", ";VALUE=DATE:20260329", ";VALUE=DATE:20260330")))
    assert booking.all_day
    assert (booking.start_date, booking.end_date) == (date(2026, 3, 29), date(2026, 3, 30))
    assert booking.start_utc == datetime(2026, 3, 28, 23, tzinfo=UTC)
    # the DST day is 23 hours long
    assert booking.end_utc - booking.start_utc == (
        datetime(2026, 3, 29, 22, tzinfo=UTC) - datetime(2026, 3, 28, 23, tzinfo=UTC)
    )


def test_duration_gives_the_end():
    data = vcalendar("UID:a\nDTSTART;TZID=Europe/Stockholm:20260302T100000\nDURATION:PT45M")
    booking = one(data)
    assert (booking.end_utc - booking.start_utc).total_seconds() == 45 * 60


def test_a_date_without_end_lasts_one_day_and_a_time_without_end_is_an_instant():
    day = one(vcalendar("UID:a\nDTSTART;VALUE=DATE:20260302"))
    assert day.end_date == date(2026, 3, 3)
    instant = one(vcalendar("UID:b\nDTSTART:20260302T100000Z"))
    assert instant.start_utc == instant.end_utc


def test_status_and_sequence_and_visit_details_are_read():
    booking = one(
        vcalendar(
            event(
                "a",
                ":20260302T100000Z",
                ":20260302T110000Z",
                STATUS="CANCELLED",
                SEQUENCE="3",
                X_PK_MODE="phone",
                X_PK_INTERPRETER="arabiska",
                X_PK_TRANSPORT="TRUE",
                X_PK_PRACTITIONER="Sara Nilsson",
                LOCATION="Sigfridsvägen 9",
            )
        )
    )
    assert booking.status == "cancelled"
    assert booking.sequence == 3
    assert booking.mode == "phone"
    assert booking.interpreter and booking.interpreter_language == "arabiska"
    assert booking.transport_needed
    assert booking.practitioner_name == "Sara Nilsson"
    assert booking.location == "Sigfridsvägen 9"


def test_a_series_is_stored_with_its_rule_and_an_open_end():
    booking = one(
        vcalendar(
            event(
                "s",
                ";TZID=Europe/Stockholm:20260303T130000",
                ";TZID=Europe/Stockholm:20260303T140000",
                RRULE="FREQ=WEEKLY;BYDAY=TU",
            )
        )
    )
    assert booking.recurrence_ics is not None and "RRULE:FREQ=WEEKLY" in booking.recurrence_ics
    assert booking.range_end_utc is None


def test_a_counted_series_knows_its_last_end():
    booking = one(
        vcalendar(
            event(
                "s",
                ";TZID=Europe/Stockholm:20260303T130000",
                ";TZID=Europe/Stockholm:20260303T140000",
                RRULE="FREQ=WEEKLY;COUNT=3",
            )
        )
    )
    assert booking.range_end_utc == datetime(2026, 3, 17, 13, tzinfo=UTC)


def test_an_override_is_keyed_by_its_recurrence_id_in_utc():
    data = vcalendar(
        event(
            "s",
            ";TZID=Europe/Stockholm:20260303T130000",
            ";TZID=Europe/Stockholm:20260303T140000",
            RRULE="FREQ=WEEKLY",
        ),
        event(
            "s", ";TZID=Europe/Stockholm:20260310T150000", ";TZID=Europe/Stockholm:20260310T160000"
        )
        + "\nRECURRENCE-ID;TZID=Europe/Stockholm:20260310T130000",
    )
    keys = sorted(b.recurrence_key for b in parse(data, default_zone=ZONE).bookings)
    assert keys == ["", "20260310T120000Z"]


@pytest.mark.parametrize(
    ("method", "complete", "cancel_only"),
    [
        (None, True, False),
        ("PUBLISH", True, False),
        ("REQUEST", False, False),
        ("CANCEL", False, True),
    ],
)
def test_method_decides_whether_a_read_is_complete(method, complete, cancel_only):
    result = parse(
        vcalendar(event("a", ":20260302T100000Z", ":20260302T110000Z"), method=method),
        default_zone=ZONE,
    )
    assert (result.complete, result.cancel_only) == (complete, cancel_only)


def test_a_reply_is_refused_as_not_publishing_bookings():
    with pytest.raises(ProviderError) as info:
        parse(
            vcalendar(event("a", ":20260302T100000Z", ":20260302T110000Z"), method="REPLY"),
            default_zone=ZONE,
        )
    assert info.value.code == "ics.method_unsupported"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "ics.empty"),
        (b"   \r\n", "ics.empty"),
        (b"<!doctype html><html><body>Logga in</body></html>", "ics.not_calendar"),
        (b"Hello, this is not a calendar", "ics.not_calendar"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n", "ics.damaged"),
        (b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\n", "ics.no_calendar"),
    ],
)
def test_files_damaged_as_a_whole_are_refused_with_a_code(data, code):
    with pytest.raises(ProviderError) as info:
        parse(data, default_zone=ZONE)
    assert info.value.code == code


def test_a_file_over_the_size_cap_is_refused_before_parsing():
    with pytest.raises(ProviderError) as info:
        parse(b"BEGIN:VCALENDAR\r\n" + b"X" * 2000, default_zone=ZONE, max_bytes=1000)
    assert info.value.code == "ics.too_large"


def test_a_utf16_file_with_a_bom_is_read():
    result = parse((ICS / "ical.net/Bug2912657.ics").read_bytes(), default_zone=ZONE)
    assert len(result.bookings) == 3


def test_a_damaged_event_is_skipped_and_reported_by_uid_while_the_rest_is_read():
    data = vcalendar(
        event("good", ":20260302T100000Z", ":20260302T110000Z"),
        "UID:bad\nDTSTART:NOT-A-DATE\nSUMMARY:x",
        event("backwards", ":20260302T100000Z", ":20260302T090000Z"),
        "UID:weird-zone\nDTSTART;TZID=Mars/Olympus:20260302T100000",
        event("busy-bee", ":20260302T100000Z", ":20260302T110000Z", RRULE="FREQ=MINUTELY"),
    )
    result = parse(data, default_zone=ZONE)
    assert [b.uid for b in result.bookings] == ["good"]
    assert {(s.uid, s.code) for s in result.skipped} == {
        ("bad", "event.damaged"),
        ("backwards", "event.end_before_start"),
        ("weird-zone", "event.unknown_tzid"),
        ("busy-bee", "event.rrule_too_frequent"),
    }


def test_an_event_without_uid_gets_a_stable_derived_one():
    data = vcalendar("DTSTART:20260302T100000Z\nDTEND:20260302T110000Z\nSUMMARY:Tandläkare")
    first, second = one(data), one(data)
    assert first.uid == second.uid and first.uid.startswith("derived-")


def test_the_newest_revision_wins_when_a_uid_appears_twice():
    data = vcalendar(
        event("a", ":20260302T100000Z", ":20260302T110000Z", SEQUENCE="2", SUMMARY_X="x"),
        event("a", ":20260303T100000Z", ":20260303T110000Z", SEQUENCE="1"),
    )
    assert one(data).start_utc == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_an_rdate_period_keeps_its_own_zone():
    data = vcalendar(
        "UID:p\nDTSTART;TZID=America/New_York:20240901T080000\n"
        "DTEND;TZID=America/New_York:20240901T090000\n"
        "RDATE;VALUE=PERIOD;TZID=Europe/Berlin:20240913T120000/PT2H"
    )
    booking = one(data)
    from calendar_app.domain.recurrence import expand

    times = expand(
        [booking.recurrence_ics],
        datetime(2024, 9, 10, tzinfo=UTC),
        datetime(2024, 9, 20, tzinfo=UTC),
    )
    in_window = [t for t in times if t[1].astimezone(UTC) >= datetime(2024, 9, 10, tzinfo=UTC)]
    assert [(s.astimezone(UTC), e.astimezone(UTC)) for _k, s, e in in_window] == [
        (datetime(2024, 9, 13, 10, tzinfo=UTC), datetime(2024, 9, 13, 12, tzinfo=UTC))
    ]


def test_an_empty_rrule_line_is_no_rule_and_a_same_day_dtend_means_one_day():
    booking = one(
        vcalendar("UID:h\nDTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261224\nRRULE:")
    )
    assert booking.recurrence_ics is None
    assert booking.end_date == date(2026, 12, 25)
