"""DESIGN §4 "Identity and merge" on a real database (SQLite and PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    ImportRun,
    Provider,
    ProviderKind,
)
from calendar_app.providers import ProviderError
from calendar_app.services.calendar import merged_calendar
from calendar_app.services.imports import NothingUsable
from tests.support.helpers import add_person, do_import, event, vcalendar

# Both databases: storage of instants, upserts and reconciliation depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

FUTURE = ":20261210T100000Z", ":20261210T110000Z"
FUTURE2 = ":20261211T100000Z", ":20261211T110000Z"
PAST = ":20261101T100000Z", ":20261101T110000Z"
ZONE = ZoneInfo("Europe/Stockholm")


def rows(session, person):
    return {
        b.uid: b
        for b in session.scalars(
            select(Booking).where(Booking.person_id == person.id, Booking.recurrence_key == "")
        )
    }


def test_reimport_of_the_same_file_changes_nothing(session, now):
    person = add_person(session, now)
    data = vcalendar(event("a", *FUTURE), event("b", *FUTURE2))
    first = do_import(session, person, data, now)
    before = {uid: (b.id, b.content_hash) for uid, b in rows(session, person).items()}
    second = do_import(session, person, data, now + timedelta(hours=1))
    assert (first.added, first.unchanged) == (2, 0)
    assert (second.added, second.updated, second.cancelled, second.unchanged) == (0, 0, 0, 2)
    session.expire_all()
    assert {uid: (b.id, b.content_hash) for uid, b in rows(session, person).items()} == before
    assert all(b.last_seen_utc == now + timedelta(hours=1) for b in rows(session, person).values())


def test_a_changed_booking_is_updated_in_place_keeping_its_sequence(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE, SEQUENCE="1")), now)
    original_id = rows(session, person)["a"].id
    summary = do_import(session, person, vcalendar(event("a", *FUTURE2, SEQUENCE="2")), now)
    session.expire_all()
    booking = rows(session, person)["a"]
    assert summary.updated == 1
    assert booking.id == original_id
    assert booking.sequence == 2
    assert booking.start_utc == datetime(2026, 12, 11, 10, tzinfo=UTC)
    assert booking.first_seen_utc == now


def test_an_older_sequence_does_not_overwrite_a_newer_one(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE2, SEQUENCE="5")), now)
    summary = do_import(session, person, vcalendar(event("a", *FUTURE, SEQUENCE="4")), now)
    session.expire_all()
    assert summary.unchanged == 1
    assert rows(session, person)["a"].start_utc == datetime(2026, 12, 11, 10, tzinfo=UTC)


def test_a_complete_read_cancels_missing_future_bookings_but_leaves_the_past(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(event("past", *PAST), event("future", *FUTURE), event("kept", *FUTURE2)),
        now,
    )
    summary = do_import(session, person, vcalendar(event("kept", *FUTURE2)), now)
    session.expire_all()
    stored = rows(session, person)
    assert summary.cancelled == 1
    assert stored["future"].status == BookingStatus.CANCELLED
    assert stored["past"].status == BookingStatus.CONFIRMED
    assert stored["kept"].status == BookingStatus.CONFIRMED
    assert len(stored) == 3, "cancelled means kept with status cancelled, never deleted"


def test_a_cancelled_booking_that_comes_back_is_confirmed_again(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE), event("b", *FUTURE2)), now)
    do_import(session, person, vcalendar(event("b", *FUTURE2)), now)
    summary = do_import(session, person, vcalendar(event("a", *FUTURE), event("b", *FUTURE2)), now)
    session.expire_all()
    assert summary.updated == 1
    assert rows(session, person)["a"].status == BookingStatus.CONFIRMED


def test_a_series_that_vanishes_after_it_started_is_cancelled_from_now_on(session, now):
    person = add_person(session, now)
    series = event(
        "weekly",
        ";TZID=Europe/Stockholm:20261103T130000",
        ";TZID=Europe/Stockholm:20261103T140000",
        RRULE="FREQ=WEEKLY",
    )
    do_import(session, person, vcalendar(series, event("other", *FUTURE)), now)
    do_import(session, person, vcalendar(event("other", *FUTURE)), now)
    session.expire_all()
    weekly = rows(session, person)["weekly"]
    assert weekly.status == BookingStatus.CONFIRMED
    assert weekly.cancelled_from_utc == now


def test_request_and_cancel_messages_touch_only_the_uids_they_name(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE), event("b", *FUTURE2)), now)
    request = do_import(
        session, person, vcalendar(event("c", *FUTURE, SUMMARY_X="new"), method="REQUEST"), now
    )
    assert (request.added, request.cancelled) == (1, 0)
    cancel = do_import(session, person, vcalendar(event("a", *FUTURE), method="CANCEL"), now)
    session.expire_all()
    stored = rows(session, person)
    assert cancel.cancelled == 1
    assert stored["a"].status == BookingStatus.CANCELLED
    assert stored["b"].status == BookingStatus.CONFIRMED
    assert stored["c"].status == BookingStatus.CONFIRMED


def test_status_cancelled_in_the_file_keeps_the_booking_as_cancelled(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE)), now)
    summary = do_import(session, person, vcalendar(event("a", *FUTURE, STATUS="CANCELLED")), now)
    session.expire_all()
    assert summary.cancelled == 1
    assert rows(session, person)["a"].status == BookingStatus.CANCELLED


def test_a_file_damaged_as_a_whole_stores_nothing_and_keeps_what_was_there(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE)), now)
    before = session.scalar(select(func.count()).select_from(Booking))
    runs = session.scalar(select(func.count()).select_from(ImportRun))
    for bad in (b"<html>Service unavailable</html>", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"):
        with pytest.raises(ProviderError):
            do_import(session, person, bad, now, provider="Ny enhet")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Booking)) == before
    assert session.scalar(select(func.count()).select_from(ImportRun)) == runs
    assert session.scalars(select(Provider).where(Provider.name == "Ny enhet")).first() is None
    assert rows(session, person)["a"].status == BookingStatus.CONFIRMED


def test_a_damaged_event_is_skipped_and_its_stored_booking_stays_untouched(session, now):
    person = add_person(session, now)
    do_import(
        session, person, vcalendar(event("a", *FUTURE, SUMMARY_X="1"), event("b", *FUTURE2)), now
    )
    stored_a = rows(session, person)["a"]
    hash_before = stored_a.content_hash
    damaged = vcalendar("UID:a\nDTSTART:BROKEN\nSUMMARY:changed", event("b", *FUTURE2))
    summary = do_import(session, person, damaged, now)
    session.expire_all()
    assert [(s.uid, s.code) for s in summary.skipped] == [("a", "event.damaged")]
    assert summary.cancelled == 0
    a = rows(session, person)["a"]
    assert a.status == BookingStatus.CONFIRMED and a.content_hash == hash_before


def test_the_same_uid_from_two_sources_is_stored_once_per_source(session, now):
    person = add_person(session, now)
    data = vcalendar(event("shared", *FUTURE))
    do_import(session, person, data, now, source="feed")
    do_import(session, person, data, now, source="file")
    count = session.scalar(select(func.count()).select_from(Booking).where(Booking.uid == "shared"))
    assert count == 2


def test_every_booking_knows_its_provider_source_and_when_it_was_last_seen(session, now):
    person = add_person(session, now)
    do_import(
        session,
        person,
        vcalendar(event("a", *FUTURE)),
        now,
        provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
        source="feed",
    )
    booking = rows(session, person)["a"]
    assert booking.provider.name == "Boendestöd Växjö kommun"
    assert booking.provider.kind == ProviderKind.MUNICIPALITY
    assert booking.source.name == "feed"
    assert booking.last_seen_utc == now


def test_a_provider_kind_that_contradicts_the_registered_one_is_refused(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE)), now, kind=ProviderKind.REGION)
    with pytest.raises(DomainError) as info:
        do_import(
            session, person, vcalendar(event("b", *FUTURE)), now, kind=ProviderKind.MUNICIPALITY
        )
    assert info.value.code == "provider.kind_mismatch"
    session.rollback()
    assert "b" not in rows(session, person)


@pytest.mark.parametrize("reserved", ["builtin", "push"])
def test_a_file_cannot_be_imported_into_a_reserved_source(session, now, reserved):
    """The native bookings and the unit system's pushed ones are not a file's to cancel."""
    from calendar_app.domain.errors import DomainError
    from tests.support.helpers import add_person, do_import, event, vcalendar

    person = add_person(session, now)
    data = vcalendar(event("x", ":20261202T090000Z", ":20261202T100000Z"))
    with pytest.raises(DomainError) as caught:
        do_import(session, person, data, now, source=reserved)
    assert caught.value.code == "source.builtin"


def test_a_file_whose_every_event_is_unreadable_is_refused_and_changes_nothing(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE)), now)
    runs = session.scalar(select(func.count()).select_from(ImportRun))
    unreadable = vcalendar("UID:a\nDTSTART:BROKEN", "UID:b\nSUMMARY:no start")
    with pytest.raises(NothingUsable) as refused:
        do_import(session, person, unreadable, now)
    session.rollback()
    assert refused.value.code == "ics.nothing_usable"
    assert [(s.uid, s.code) for s in refused.value.skipped] == [
        ("a", "event.damaged"),
        ("b", "event.no_start"),
    ]
    assert session.scalar(select(func.count()).select_from(ImportRun)) == runs
    assert rows(session, person)["a"].status == BookingStatus.CONFIRMED


def test_an_empty_calendar_is_still_a_complete_read_that_cancels_what_it_no_longer_lists(
    session, now
):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("a", *FUTURE)), now)
    summary = do_import(session, person, vcalendar(), now)
    session.expire_all()
    assert (summary.cancelled, summary.skipped) == (1, ())
    assert rows(session, person)["a"].status == BookingStatus.CANCELLED


HOURS = ",".join(str(h) for h in range(24))
MINUTES = ",".join(str(m) for m in range(60))
EVERY_MINUTE = f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}"


def test_a_rule_too_costly_to_expand_is_skipped_by_uid_and_the_rest_imported(session, now):
    person = add_person(session, now)
    data = vcalendar(
        event("minutes", *FUTURE, RRULE=EVERY_MINUTE),
        event("weekly", *FUTURE2, RRULE="FREQ=WEEKLY"),
    )
    summary = do_import(session, person, data, now)
    assert [(s.uid, s.code) for s in summary.skipped] == [("minutes", "event.too_many_occurrences")]
    assert set(rows(session, person)) == {"weekly"}
    shown = merged_calendar(
        session, person.id, date(2026, 12, 1), date(2027, 1, 1), zone=ZONE, max_days=400
    )
    assert len(shown) == 3  # 11, 18 and 25 December


def test_a_costly_rule_stored_before_the_budget_shows_nothing_and_leaves_the_rest(session, now):
    person = add_person(session, now)
    do_import(session, person, vcalendar(event("weekly", *FUTURE2, RRULE="FREQ=WEEKLY")), now)
    weekly = rows(session, person)["weekly"]
    session.add(
        Booking(
            person_id=person.id,
            provider_id=weekly.provider_id,
            source_id=weekly.source_id,
            uid="minutes",
            start_utc=datetime(2026, 12, 10, 10, tzinfo=UTC),
            end_utc=datetime(2026, 12, 10, 11, tzinfo=UTC),
            range_start_utc=datetime(2026, 12, 10, 10, tzinfo=UTC),
            recurrence_ics=(
                "BEGIN:VEVENT\r\nUID:minutes\r\nDTSTART:20261210T100000Z\r\n"
                f"DTEND:20261210T110000Z\r\nRRULE:{EVERY_MINUTE}\r\nEND:VEVENT\r\n"
            ),
            status=BookingStatus.CONFIRMED,
            origin=BookingOrigin.SYNCED,
            content_hash="x",
            first_seen_utc=now,
            last_seen_utc=now,
        )
    )
    session.commit()
    shown = merged_calendar(
        session, person.id, date(2026, 12, 1), date(2027, 1, 1), zone=ZONE, max_days=400
    )
    assert [o.uid for o in shown] == ["weekly"] * 3
