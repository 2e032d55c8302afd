"""Replies to reminders: STOPP/STOP opts out, START opts back in, AVBOKA asks the unit to
cancel the latest reminded visit, anything else is shown to the caregivers as a message.

A reply never cancels or changes a booking by itself: a person may answer the wrong
message, and the unit decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.domain.phone import masked, to_e164
from calendar_app.models import (
    Booking,
    CareRelationship,
    HelperGrant,
    InboundKind,
    InboundSms,
    Person,
    Reminder,
    ReminderState,
    SmsOptOut,
)
from calendar_app.services.access import AccessDenied, Actor, authorize

CANCEL_WINDOW = timedelta(days=7)
STOP_WORDS = {"STOPP", "STOP"}


def opted_out(session: Session, phone_e164: str) -> bool:
    """Whether the number has replied STOPP (and not START since)."""
    return session.get(SmsOptOut, phone_e164) is not None


def _latest_reminded(session: Session, phone_e164: str, now: datetime) -> Reminder | None:
    """The latest reminder sent to this number in the last week, to the person or a helper."""
    people = select(Person.id).where(Person.phone_e164 == phone_e164)
    grants = [
        g.id
        for g in session.scalars(select(HelperGrant).where(HelperGrant.contact != ""))
        if _same_number(g.contact, phone_e164)
    ]
    return session.scalars(
        select(Reminder)
        .where(
            Reminder.state.in_([ReminderState.SENT, ReminderState.DELIVERED]),
            Reminder.changed_utc >= now - CANCEL_WINDOW,
            or_(
                (Reminder.helper_grant_id.is_(None) & Reminder.person_id.in_(people)),
                Reminder.helper_grant_id.in_(grants),
            ),
        )
        .order_by(Reminder.changed_utc.desc(), Reminder.id.desc())
        .limit(1)
    ).first()


def _latest_message(session: Session, phone_e164: str, now: datetime) -> list[Reminder]:
    """The reminders that went out in the latest message to this number (one per visit)."""
    latest = _latest_reminded(session, phone_e164, now)
    if latest is None:
        return []
    first_id = (
        int(latest.reason.removeprefix("with:")) if latest.reason.startswith("with:") else latest.id
    )
    return list(
        session.scalars(
            select(Reminder)
            .where(or_(Reminder.id == first_id, Reminder.reason == f"with:{first_id}"))
            .order_by(Reminder.visit_start_utc)
        )
    )


def _copy(row: InboundSms, kind: InboundKind) -> InboundSms:
    return InboundSms(
        received_utc=row.received_utc, from_masked=row.from_masked, body=row.body, kind=kind
    )


def _attach(session: Session, row: InboundSms, reminder: Reminder, add: Any) -> None:
    booking = session.get(Booking, reminder.booking_id)
    assert booking is not None
    row.person_id, row.booking_id, row.provider_id = (
        reminder.person_id,
        booking.id,
        booking.provider_id,
    )
    add(row)


def _same_number(contact: str, phone_e164: str) -> bool:
    try:
        return to_e164(contact) == phone_e164
    except DomainError:
        return False


@dataclass(frozen=True)
class Reply:
    kind: InboundKind
    answer: str  # what we text back, in Swedish; empty for nothing


def receive(session: Session, *, from_phone: str, body: str, now: datetime) -> Reply:
    """Record one inbound SMS and act on it (one transaction)."""
    number = to_e164(from_phone)
    word = (body.strip().split() or [""])[0].upper().strip(".!")
    row = InboundSms(received_utc=now, from_masked=masked(number), body=body[:1600])
    if word in STOP_WORDS:
        row.kind = InboundKind.STOP
        if not opted_out(session, number):
            session.add(SmsOptOut(phone_e164=number, at_utc=now))
        answer = (
            "Du får inga fler påminnelser från Personkalendern. Svara START för att få dem igen."
        )
    elif word == "START":
        row.kind = InboundKind.START
        session.execute(delete(SmsOptOut).where(SmsOptOut.phone_e164 == number))
        answer = "Du får påminnelser från Personkalendern igen."
    else:
        visits = _latest_message(session, number, now)
        if word == "AVBOKA" and visits:
            # One request per visit in that message: each unit sees its own.
            for reminder in visits:
                _attach(session, _copy(row, InboundKind.CANCEL_REQUEST), reminder, session.add)
            session.commit()
            return Reply(
                InboundKind.CANCEL_REQUEST,
                "Tack. Mottagningen får din begäran om avbokning och hör av sig.",
            )
        row.kind = InboundKind.MESSAGE
        answer = ""
        if len(visits) == 1:
            _attach(session, row, visits[0], lambda _: None)
        elif visits:
            row.person_id = visits[0].person_id  # shown to every unit in the person's care
        else:
            owner = session.scalars(select(Person.id).where(Person.phone_e164 == number)).all()
            row.person_id = owner[0] if len(owner) == 1 else None
    session.add(row)
    session.commit()
    return Reply(row.kind, answer)


def unit_messages(session: Session, actor: Actor, *, now: datetime) -> list[InboundSms]:
    """Cancellation requests and messages for the caregiver's unit: about its own visits,
    or from people in its care. Each person's messages are an audited read."""
    if actor.provider_id is None:
        return []
    in_care = select(CareRelationship.person_id).where(
        CareRelationship.provider_id == actor.provider_id, CareRelationship.ended_utc.is_(None)
    )
    rows = list(
        session.scalars(
            select(InboundSms)
            .where(
                InboundSms.kind.in_([InboundKind.CANCEL_REQUEST, InboundKind.MESSAGE]),
                InboundSms.received_utc >= now - timedelta(days=30),
                or_(
                    InboundSms.provider_id == actor.provider_id,
                    (InboundSms.provider_id.is_(None) & InboundSms.person_id.in_(in_care)),
                ),
            )
            .order_by(InboundSms.received_utc.desc())
        )
    )
    shown = []
    for person_id in dict.fromkeys(r.person_id for r in rows if r.person_id is not None):
        try:
            authorize(session, actor, person_id, "booking.read", now=now, detail="sms replies")
        except AccessDenied:
            continue  # the care relationship ended since
        shown.append(person_id)
    session.commit()
    return [r for r in rows if r.person_id in shown]
