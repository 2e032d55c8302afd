"""The outbox planned from the person's rules: re-planned on a move, withdrawn on a
cancellation, never twice, never dropped without a reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select, update

from calendar_app.domain.errors import DomainError
from calendar_app.models import Person, Reminder, ReminderState
from calendar_app.services import reminders
from calendar_app.services.booking import (
    VisitDraft,
    book_visit,
    cancel_visit,
    reach_by_id,
    rebook_visit,
)
from calendar_app.services.settings import withdraw_helper
from tests.support.world import actor, build_world

# Both databases: the outbox's rows, re-planned and withdrawn in place depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

PHONE = "+46701112233"


@pytest.fixture
def world(session, now):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = PHONE
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    return world


def rows(session, **where) -> list[Reminder]:
    query = select(Reminder).order_by(Reminder.send_at_utc, Reminder.id)
    for name, value in where.items():
        query = query.where(getattr(Reminder, name) == value)
    found = list(session.scalars(query))
    session.commit()
    return found


def replan(session, world, now):
    reminders.replan(session, world.person_id, now=now)
    session.commit()


def test_without_rules_each_visit_is_reminded_the_day_before_at_six(session, world, now):
    replan(session, world, now)

    to_person = rows(session, booking_id=world.booking_a, helper_grant_id=None)

    assert [(r.state, r.send_at_utc, r.rule_label) for r in to_person] == [
        (ReminderState.PLANNED, datetime(2026, 12, 1, 17, tzinfo=UTC), "days_before 1 18:00")
    ]
    # The helper granted reminders gets hers; the helpers without that right get none.
    labels = {r.recipient_label for r in rows(session, booking_id=world.booking_a)}
    assert labels == {"person", "helper_reminders"}


def test_a_person_without_a_mobile_number_sees_the_reminder_withdrawn_with_the_reason(
    session, world, now
):
    session.get(Person, world.person_id).phone_e164 = None
    session.commit()
    replan(session, world, now)
    mine = rows(session, booking_id=world.booking_a, helper_grant_id=None)
    assert [(r.state, r.reason) for r in mine] == [(ReminderState.WITHDRAWN, "no_phone")]


def test_the_persons_rules_replace_the_default(session, world, now):
    person = actor(session, "person")
    reminders.add_rule(
        session, person, world.person_id, kind="days_before", days=2, at=time(18), now=now
    )
    reminders.add_rule(
        session, person, world.person_id, kind="days_before", days=0, at=time(7, 30), now=now
    )

    mine = rows(session, booking_id=world.booking_a, helper_grant_id=None)

    planned = [(r.rule_label, r.send_at_utc) for r in mine if r.state == ReminderState.PLANNED]
    assert planned == [
        ("days_before 2 18:00", datetime(2026, 11, 30, 17, tzinfo=UTC)),
        ("days_before 0 07:30", datetime(2026, 12, 2, 6, 30, tzinfo=UTC)),
    ]
    default = [r for r in mine if r.rule_label == "days_before 1 18:00"]
    assert [(r.state, r.reason) for r in default] == [(ReminderState.WITHDRAWN, "not_applicable")]


def move(session, world, now, days: int, hour: int = 13) -> date:
    """Move the world's native booking (20 days ahead, beyond the horizon) to `days` ahead."""
    day = (now + timedelta(days=days)).date()
    rebook_visit(
        session,
        actor(session, "caregiver"),
        world.native_booking,
        VisitDraft(day, time(hour), 30),
        now=now,
    )
    return day


def test_moving_a_booking_replans_its_reminder_in_place(session, world, now):
    move(session, world, now, 10)
    before = rows(session, booking_id=world.native_booking, helper_grant_id=None)

    new_day = move(session, world, now, 12)

    after = rows(session, booking_id=world.native_booking, helper_grant_id=None)
    assert len(before) == 1
    assert [r.id for r in after] == [r.id for r in before]
    assert after[0].state == ReminderState.PLANNED
    assert after[0].send_at_utc.astimezone().date() == new_day - timedelta(days=1)


def test_cancelling_withdraws_the_planned_reminders(session, world, now):
    move(session, world, now, 10)
    cancel_visit(session, actor(session, "caregiver"), world.native_booking, now=now)
    found = rows(session, booking_id=world.native_booking)
    assert found and all(
        (r.state, r.reason) == (ReminderState.WITHDRAWN, "visit_changed") for r in found
    )


def test_a_sent_reminder_is_never_planned_again_but_a_moved_visit_gets_a_new_one(
    session, world, now
):
    move(session, world, now, 10)
    sent = rows(session, booking_id=world.native_booking, helper_grant_id=None)[0]
    session.execute(update(Reminder).where(Reminder.id == sent.id).values(state=ReminderState.SENT))
    session.commit()
    replan(session, world, now)
    assert len(rows(session, booking_id=world.native_booking, helper_grant_id=None)) == 1

    move(session, world, now, 12, hour=9)

    found = rows(session, booking_id=world.native_booking, helper_grant_id=None)
    assert [(r.id == sent.id, r.state) for r in found] == [
        (True, ReminderState.SENT),
        (False, ReminderState.PLANNED),
    ]


def test_a_visit_booked_after_the_rules_times_is_reminded_at_once(session, world, now):
    late_now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    booking = book_visit(
        session,
        actor(session, "caregiver"),
        reach_by_id(session, actor(session, "caregiver"), world.person_id),
        VisitDraft(date(2026, 12, 3), time(14), 30),
        now=late_now,
    )
    found = rows(session, booking_id=booking.id, helper_grant_id=None)
    assert [(r.state, r.send_at_utc) for r in found] == [(ReminderState.PLANNED, late_now)]


def test_quiet_hours_and_a_unit_opt_out_are_kept(session, world, now):
    person = actor(session, "person")
    reminders.add_rule(
        session, person, world.person_id, kind="days_before", days=0, at=time(6), now=now
    )
    reminders.set_reminder_settings(
        session,
        person,
        world.person_id,
        to_person=True,
        quiet_start=time(21),
        quiet_end=time(8),
        now=now,
    )
    # Booking A starts 10.00 on 2 December: 06.00 moves to 08.00.
    morning = rows(session, booking_id=world.booking_a, helper_grant_id=None)
    assert [r.send_at_utc for r in morning if r.state == ReminderState.PLANNED] == [
        datetime(2026, 12, 2, 7, tzinfo=UTC)
    ]

    reminders.set_unit_reminders(session, person, world.person_id, world.unit_a, on=False, now=now)

    assert all(
        r.state == ReminderState.WITHDRAWN for r in rows(session, booking_id=world.booking_a)
    )
    assert any(r.state == ReminderState.PLANNED for r in rows(session, booking_id=world.booking_b))


def test_the_person_turns_reminders_to_themselves_off_and_the_helper_keeps_hers(
    session, world, now
):
    reminders.set_reminder_settings(
        session,
        actor(session, "person"),
        world.person_id,
        to_person=False,
        quiet_start=None,
        quiet_end=None,
        now=now,
    )
    planned = [r for r in rows(session, booking_id=world.booking_a) if r.state == "planned"]
    assert [r.recipient_label for r in planned] == ["helper_reminders"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"kind": "days_before", "days": 20, "at": time(18)}, "reminder.rule"),
        ({"kind": "hours_before", "hours": 0}, "reminder.rule"),
        ({"kind": "weekly"}, "reminder.rule"),
    ],
)
def test_a_bad_rule_is_refused_and_nothing_changes(session, world, now, kwargs, code):
    before = [(r.id, r.state, r.send_at_utc) for r in rows(session)]
    with pytest.raises(DomainError, match=code):
        reminders.add_rule(session, actor(session, "person"), world.person_id, **kwargs, now=now)
    session.rollback()
    assert [(r.id, r.state, r.send_at_utc) for r in rows(session)] == before


def test_only_those_who_manage_the_settings_may_change_the_rules(session, world, now):
    with pytest.raises(DomainError, match="access.denied"):
        reminders.add_rule(
            session,
            actor(session, "helper_reminders"),
            world.person_id,
            kind="hours_before",
            hours=3,
            now=now,
        )


def test_withdrawing_a_helper_withdraws_her_planned_reminders(session, world, now):
    grant_id = rows(session, recipient_label="helper_reminders")[0].helper_grant_id
    withdraw_helper(session, actor(session, "person"), world.person_id, grant_id, now=now)
    hers = rows(session, helper_grant_id=grant_id)
    assert hers and all(r.state == ReminderState.WITHDRAWN for r in hers)
    assert any(r.state == ReminderState.PLANNED for r in rows(session, helper_grant_id=None))
