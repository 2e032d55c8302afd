"""Dispatching due reminders: sent exactly once, failures recorded, leases recovered."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select, update

from calendar_app.models import Booking, BookingStatus, Person, Reminder, ReminderState, UnitConsent
from calendar_app.services import reminders
from calendar_app.services.booking import VisitDraft, cancel_visit, rebook_visit
from calendar_app.services.dispatch import (
    DispatchSettings,
    claim_due,
    dispatch_due,
)
from calendar_app.sms import ConsoleSender, SmsError
from tests.support.dispatch_fakes import FakeSender
from tests.support.world import actor, build_world

# Both databases: claims with leases (FOR UPDATE SKIP LOCKED on PostgreSQL) depend on
# the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

PHONE = "+46701112233"
DUE = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # the day before booking A, 18.00 local
SETTINGS = DispatchSettings(public_base_url="https://kal.example.se")


@pytest.fixture
def world(session, now):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = PHONE
    for unit in (world.unit_a, world.unit_b):  # the person lets reminders name both units
        session.add(
            UnitConsent(
                person_id=world.person_id, provider_id=unit, named_in_sms=True, changed_utc=now
            )
        )
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    return world


def run(app, sender, at: datetime) -> int:
    return dispatch_due(
        app.extensions["session_factory"], sender=sender, settings=SETTINGS, clock=lambda: at
    )


def booking_a_rows(session, world) -> dict[str, Reminder]:
    session.expire_all()  # the schedulers wrote through their own sessions
    rows = {
        r.recipient_label: r
        for r in session.scalars(select(Reminder).where(Reminder.booking_id == world.booking_a))
    }
    session.commit()
    return rows


def test_a_due_reminder_is_sent_once_with_its_text_on_record(app, session, world):
    sender = FakeSender()

    # Booking A (10.00) and booking B (10.30) on 2 December, to the person and to the
    # helper with the right: four reminders, two messages.
    assert run(app, sender, DUE) == 4
    assert run(app, sender, DUE + timedelta(minutes=5)) == 0

    rows = booking_a_rows(session, world)
    mine = rows["person"]
    assert (mine.state, mine.segments, mine.message_sid is not None) == (
        ReminderState.SENT,
        1,
        True,
    )
    assert mine.body == (
        "Påminnelse ons 2 dec: kl. 10.00 Vuxenpsykiatrin Växjö, Sigfridsvägen 9; "
        "kl. 10.30 Boendestöd Växjö kommun, Hemma. https://kal.example.se"
    )
    assert rows["helper_reminders"].body.startswith("Påminnelse för Alva ons 2 dec: kl. 10.00")
    to_person = [s for s in sender.sent if s[0] == PHONE]
    assert len(to_person) == 1 and to_person[0][2] == 36_000  # the gateway's longest validity
    shared = session.scalars(
        select(Reminder).where(
            Reminder.booking_id == world.booking_b, Reminder.helper_grant_id.is_(None)
        )
    ).one()
    session.commit()
    assert (shared.state, shared.reason) == (ReminderState.SENT, f"with:{mine.id}")


def test_nothing_is_sent_before_its_time(app, session, world):
    sender = FakeSender()
    assert run(app, sender, DUE - timedelta(seconds=1)) == 0
    assert sender.sent == []
    assert booking_a_rows(session, world)["person"].state == ReminderState.PLANNED


def test_a_unit_is_named_only_where_the_person_opted_in_and_a_protected_person_gets_no_address(
    app, session, world, now
):
    consent = session.scalars(
        select(UnitConsent).where(UnitConsent.provider_id == world.unit_a)
    ).one()
    consent.named_in_sms = False  # the default: the unit's name could tell what care it is
    session.get(Person, world.person_id).protected_identity = True
    session.commit()

    run(app, FakeSender(), DUE)

    body = booking_a_rows(session, world)["person"].body
    assert "din vårdgivare" in body and "Vuxenpsykiatrin" not in body
    assert "Boendestöd Växjö kommun" in body  # opted in for that one
    assert "Sigfridsvägen" not in body


def test_a_unit_the_person_marked_sensitive_is_never_named(app, session, world):
    consent = session.scalars(
        select(UnitConsent).where(UnitConsent.provider_id == world.unit_a)
    ).one()
    consent.sensitive = True
    session.commit()
    run(app, FakeSender(), DUE)
    assert "Vuxenpsykiatrin" not in booking_a_rows(session, world)["person"].body


def test_a_permanent_error_is_recorded_and_never_retried(app, session, world):
    sender = FakeSender()
    sender.errors[PHONE] = SmsError("21211", "invalid 'To' number", permanent=True)

    run(app, sender, DUE)
    run(app, sender, DUE + timedelta(hours=1))

    mine = booking_a_rows(session, world)["person"]
    assert (mine.state, mine.reason, mine.attempts) == (ReminderState.FAILED, "21211", 1)


def test_a_temporary_error_is_retried_with_backoff_then_given_up_visibly(app, session, world):
    sender = FakeSender()
    sender.errors[PHONE] = SmsError("429", "too many requests", permanent=False)

    run(app, sender, DUE)
    first = booking_a_rows(session, world)["person"]
    assert (first.state, first.reason, first.send_at_utc) == (
        ReminderState.PLANNED,
        "retry:429",
        DUE + timedelta(minutes=1),
    )
    at = DUE
    for _ in range(6):
        at += timedelta(minutes=10)
        run(app, sender, at)
    final = booking_a_rows(session, world)["person"]
    assert (final.state, final.reason, final.attempts) == (ReminderState.FAILED, "429", 5)


def test_a_claim_whose_scheduler_died_is_taken_again_after_the_lease(app, session, world):
    factory = app.extensions["session_factory"]
    with factory() as crashed:
        claimed = claim_due(crashed, now=DUE)  # ...and the process dies here
    assert claimed
    sender = FakeSender()

    assert run(app, sender, DUE + timedelta(minutes=1)) == 0  # still under lease
    assert run(app, sender, DUE + timedelta(minutes=6)) == len(claimed)

    assert booking_a_rows(session, world)["person"].state == ReminderState.SENT
    assert len([s for s in sender.sent if s[0] == PHONE]) == 1


def test_a_visit_cancelled_after_the_claim_is_withdrawn_not_sent(app, session, world):
    factory = app.extensions["session_factory"]
    with factory() as scheduler:
        claim_due(scheduler, now=DUE)
    session.execute(
        update(Booking).where(Booking.id == world.booking_a).values(status=BookingStatus.CANCELLED)
    )
    session.commit()
    sender = FakeSender()

    run(app, sender, DUE + timedelta(minutes=6))

    mine = booking_a_rows(session, world)["person"]
    assert (mine.state, mine.reason) == (ReminderState.WITHDRAWN, "visit_changed")
    assert all(s[0] != PHONE or "Vuxenpsykiatrin" not in s[1] for s in sender.sent)


def test_two_schedulers_claiming_at_once_never_take_the_same_reminder(app, session, world):
    factory = app.extensions["session_factory"]
    claims: list[list[int]] = []
    start = threading.Barrier(2)

    def claim() -> None:
        with factory() as own:
            start.wait()
            claims.append(claim_due(own, now=DUE + timedelta(days=3), limit=3))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    first, second = claims
    assert first and not set(first) & set(second)


def test_the_console_sender_logs_a_masked_number_and_never_the_text(caplog):
    with caplog.at_level(logging.INFO):
        ConsoleSender().send(PHONE, "Påminnelse: Vuxenpsykiatrin")
    assert "+46*******33" in caplog.text
    assert PHONE not in caplog.text and "Vuxenpsykiatrin" not in caplog.text


def test_after_an_outage_what_became_due_is_sent_unless_the_visit_has_begun(app, session, world):
    # No scheduler ran from before the reminders' time until after booking A began
    # (10.00 on 2 December) but before booking B began (10.30).
    sender = FakeSender()
    run(app, sender, datetime(2026, 12, 2, 9, 15, tzinfo=UTC))

    session.expire_all()
    rows = {
        (r.booking_id, r.helper_grant_id is None): r
        for r in session.scalars(select(Reminder).where(Reminder.helper_grant_id.is_(None)))
    }
    session.commit()
    started = rows[(world.booking_a, True)]
    ahead = rows[(world.booking_b, True)]
    assert (started.state, started.reason) == (ReminderState.WITHDRAWN, "too_late")
    assert ahead.state == ReminderState.SENT
    assert [body for to, body, _ in sender.sent if to == PHONE] == [ahead.body]


@pytest.mark.parametrize("notice", [True, False])
def test_a_cancelled_visit_one_was_reminded_of_gets_a_notice_if_the_person_wants(
    app, session, world, now, notice
):
    caregiver, person = actor(session, "caregiver"), actor(session, "person")
    reminders.set_reminder_settings(
        session,
        person,
        world.person_id,
        to_person=True,
        quiet_start=None,
        quiet_end=None,
        cancellation_notice=notice,
        now=now,
    )
    day = date(2026, 12, 4)  # Friday; the day-before reminder goes out Thursday 18.00
    rebook_visit(session, caregiver, world.native_booking, VisitDraft(day, time(13), 30), now=now)
    sender = FakeSender()
    run(app, sender, datetime(2026, 12, 3, 17, 0, tzinfo=UTC))
    assert len([s for s in sender.sent if s[0] == PHONE]) == 1

    cancelled_at = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    cancel_visit(session, caregiver, world.native_booking, now=cancelled_at)
    run(app, sender, cancelled_at + timedelta(minutes=1))
    run(app, sender, cancelled_at + timedelta(minutes=2))

    texts = [body for to, body, _ in sender.sent if to == PHONE]
    if notice:
        assert len(texts) == 2
        assert texts[1].startswith("Inställt: fre 4 dec kl. 13.00 Vuxenpsykiatrin Växjö")
    else:
        assert len(texts) == 1
