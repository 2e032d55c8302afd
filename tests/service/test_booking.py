"""A caregiver books: clash warnings while picking, refused hard clashes, and the same check
repeated atomically on save, so two caregivers booking at once cannot both win."""

from __future__ import annotations

import threading
from datetime import date, time

import pytest
from sqlalchemy import func, select

from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    AuditEvent,
    Booking,
    BookingOrigin,
    Person,
    PersonPreferences,
    PersonTimeWindow,
    Role,
    TimeWindowKind,
)
from calendar_app.services.access import AccessDenied
from calendar_app.services.booking import (
    Reach,
    VisitDraft,
    book_visit,
    check_visit,
    reach_by_id,
    reach_by_personnummer,
)
from tests.support.world import actor, log_in

DAY = date(2026, 12, 2)  # Alva has Samtal 10-11 (psykiatri) and Boendestöd 10.30-11.30 (local)


def draft(hour: int, minute: int = 0, minutes: int = 60, **kw) -> VisitDraft:
    return VisitDraft(day=DAY, start=time(hour, minute), minutes=minutes, **kw)


def by_id(session, role: str, person_id: int) -> Reach:
    """How a caregiver of a unit that cares for the person reaches her."""
    return reach_by_id(session, actor(session, role), person_id)


def person_of(session, world) -> Person:
    return session.get(Person, world.person_id)


def test_the_check_names_each_clash_at_the_level_the_caregiver_may_see(session, world, now):
    result = check_visit(
        session,
        actor(session, "caregiver"),
        by_id(session, "caregiver", world.person_id),
        draft(10, 15),
        now=now,
    )
    assert sorted((w.kind, w.hard, w.other) for w in result.warnings) == [
        ("overlap", True, "Samtal"),
        ("overlap", True, "Upptagen"),
    ]


def test_a_hard_clash_is_refused_unless_overridden_with_a_reason_that_is_kept(session, world, now):
    caregiver = actor(session, "caregiver")
    with pytest.raises(DomainError) as info:
        book_visit(session, caregiver, Reach(person_of(session, world)), draft(10, 15), now=now)
    assert info.value.code == "clash" and "Boendestöd" not in info.value.message
    session.rollback()
    booking = book_visit(
        session,
        caregiver,
        Reach(person_of(session, world)),
        draft(10, 15),
        now=now,
        override_reason="Akut, enda möjliga tiden",
    )
    assert booking.clash_override_reason == "Akut, enda möjliga tiden"
    assert booking.origin == BookingOrigin.NATIVE and booking.booked_by_user_id == caregiver.user_id


def test_a_free_time_is_booked_into_the_units_own_source(session, world, now):
    booking = book_visit(
        session,
        actor(session, "caregiver"),
        by_id(session, "caregiver", world.person_id),
        draft(14, title="Återbesök"),
        now=now,
    )
    assert (booking.source.name, booking.provider.name) == ("builtin", "Vuxenpsykiatrin Växjö")
    assert booking.clash_override_reason is None


@pytest.mark.parametrize(
    ("day", "wall_clock", "code"),
    [
        (date(2026, 3, 29), time(2, 30), "time.nonexistent"),
        (date(2026, 10, 25), time(2, 30), "time.ambiguous"),
    ],
)
def test_a_dst_gap_or_repeated_hour_is_refused_never_guessed(session, world, day, wall_clock, code):
    from datetime import UTC, datetime

    with pytest.raises(DomainError) as info:
        check_visit(
            session,
            actor(session, "caregiver"),
            by_id(session, "caregiver", world.person_id),
            VisitDraft(day=day, start=wall_clock, minutes=30),
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
    assert info.value.code == code


@pytest.mark.parametrize(("minutes", "code"), [(0, "visit.duration"), (3000, "visit.duration")])
def test_a_zero_or_huge_duration_is_refused(session, world, now, minutes, code):
    with pytest.raises(DomainError) as info:
        check_visit(
            session,
            actor(session, "caregiver"),
            by_id(session, "caregiver", world.person_id),
            draft(14, minutes=minutes),
            now=now,
        )
    assert info.value.code == code


def test_busy_periods_suitable_times_and_the_daily_maximum_come_from_the_preferences(
    session, world, now
):
    session.add(
        PersonPreferences(
            person_id=world.person_id,
            max_visits_per_day=2,
            travel_buffer_minutes=60,
            home_address="",
            changed_utc=now,
        )
    )
    session.add(
        PersonTimeWindow(
            person_id=world.person_id,
            kind=TimeWindowKind.BUSY,
            label="Skola",
            weekdays="0,1,2,3,4",
            start_time=time(13),
            end_time=time(15),
        )
    )
    session.add(
        PersonTimeWindow(
            person_id=world.person_id,
            kind=TimeWindowKind.SUITABLE,
            weekdays="0,1,2,3,4",
            start_time=time(18),
            end_time=time(21),
        )
    )
    session.commit()
    result = check_visit(
        session,
        actor(session, "caregiver"),
        by_id(session, "caregiver", world.person_id),
        draft(14),
        now=now,
    )
    assert sorted((w.kind, w.hard) for w in result.warnings) == [
        ("busy_period", True),
        ("max_per_day", False),
        ("outside_suitable", False),
    ]


def test_a_unit_without_a_care_relationship_cannot_reach_the_person_by_id(session, world, now):
    caregiver = actor(session, "caregiver_unrelated")
    with pytest.raises(AccessDenied):
        reach_by_id(session, caregiver, world.person_id)
    with pytest.raises(AccessDenied):  # nor by an id that names nobody: the same answer
        reach_by_id(session, caregiver, 999_999)
    with pytest.raises(AccessDenied):  # a reach made up by hand opens nothing either
        check_visit(session, caregiver, Reach(person_of(session, world)), draft(16), now=now)
    assert session.scalars(select(AuditEvent.action)).all() == []


def test_a_first_visit_by_personnummer_sees_busy_time_only_is_audited_and_starts_the_relationship(
    session, world, now
):
    caregiver = actor(session, "caregiver_unrelated")
    reach = reach_by_personnummer(session, caregiver, world.pnr, now=now)
    result = check_visit(session, caregiver, reach, draft(10, 15), now=now)
    assert {w.other for w in result.warnings} == {"Upptagen"}
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions == ["calendar.busy_lookup"]
    booking = book_visit(session, caregiver, reach, draft(16), now=now)
    assert booking.provider.name == "Vårdcentralen Teleborg"
    # Now the unit cares for the person: its id reaches her, at the level she allows.
    assert reach_by_id(session, caregiver, world.person_id).person.id == world.person_id


def test_only_caregivers_book(session, world, now):
    with pytest.raises(DomainError) as info:
        book_visit(
            session, actor(session, "person"), Reach(person_of(session, world)), draft(16), now=now
        )
    assert info.value.code == "access.denied"


@pytest.mark.databases("sqlite", "postgresql")
def test_two_caregivers_booking_the_same_slot_at_once_cannot_both_win(app, world, session, now):
    """N threads released together book overlapping times: exactly one succeeds."""
    factory = app.extensions["session_factory"]
    caregiver = actor(session, "caregiver")
    session.commit()
    threads_n = 6
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        own = factory()
        try:
            barrier.wait(timeout=30)
            book_visit(
                own, caregiver, Reach(own.get(Person, world.person_id)), draft(15, i * 5), now=now
            )
            result = "booked"
        except DomainError as exc:
            own.rollback()
            result = exc.code
        finally:
            own.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["booked"] + ["clash"] * (threads_n - 1)
    count = session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.booked_by_user_id == caregiver.user_id)
    )
    assert count == 1


def test_the_booking_page_checks_then_books(client, world, session):
    log_in(client, "caregiver")
    path = f"/people/{world.person_id}/book"
    form = {
        "date": "2026-12-02",
        "start": "10:15",
        "minutes": "45",
        "title": "Återbesök",
        "location": "Sigfridsvägen 9, 352 46 Växjö",
    }
    checked = client.post(path, data={**form, "action": "check"}).get_data(as_text=True)
    assert "Krockar med Samtal" in checked and "Krockar med Upptagen" in checked
    refused = client.post(path, data={**form, "action": "book"})
    assert refused.status_code == 400
    assert "Tiden krockar. Ange ett skäl för att boka ändå" in refused.get_data(as_text=True)
    booked = client.post(path, data={**form, "start": "13:00", "action": "book"})
    assert booked.status_code == 302
    week = client.get(booked.location).get_data(as_text=True)
    assert "Återbesök" in week


def test_the_api_books_and_reports_a_clash_with_409(client, world):
    log_in(client, "caregiver")
    path = f"/api/v1/people/{world.person_id}/visits"
    body = {"date": "2026-12-02", "start": "10:15", "minutes": 30}
    assert client.post(path + "/check", json=body).json["warnings"][0]["hard"] is True
    clash = client.post(path, json=body)
    assert clash.status_code == 409 and clash.json["error"]["code"] == "clash"
    ok = client.post(path, json={**body, "start": "13:00"})
    assert ok.status_code == 201
    bad = client.post(path, json={**body, "start": "25:99"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "visit.format"


def test_users_other_than_caregivers_get_no_booking_page(client, world):
    for role in ("person", "helper_full", "admin"):
        log_in(client, role)
        assert client.get(f"/people/{world.person_id}/book").status_code == 403
        client.post("/logout")
    assert Role.CAREGIVER.value == "caregiver"
