"""Sending due reminders: claim rows under a lease, compose, send, record the outcome.

Claiming takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take
the same row; on SQLite every transaction holds the write lock (see :mod:`calendar_app.db`).
A claimed row whose lease ran out (its scheduler died) is claimed again. The one window
left: a scheduler that dies after the gateway accepted a message but before the outcome is
committed sends it again after the lease; the row itself is never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from calendar_app.domain import sms as texts
from calendar_app.domain.errors import DomainError
from calendar_app.domain.phone import to_e164
from calendar_app.domain.visibility import Sight, ViewLevel, shown_facts
from calendar_app.models import (
    Booking,
    BookingStatus,
    HelperGrant,
    Person,
    Provider,
    Reminder,
    ReminderState,
    SmsOptOut,
    UnitConsent,
)
from calendar_app.services.access import active_grant
from calendar_app.services.calendar import visit_facts
from calendar_app.services.reminders import CANCELLED
from calendar_app.sms import SmsError, SmsSender

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
# 429 and 5xx: try again after 1, 2, 4, 8 minutes, then give up and say so.
BACKOFF = timedelta(minutes=1)
MAX_VALIDITY_SECONDS = 36_000  # Twilio's ValidityPeriod is 1..36000 s


@dataclass(frozen=True)
class DispatchSettings:
    """What composing needs from the configuration."""

    public_base_url: str = ""


def claim_due(
    session: Session, *, now: datetime, limit: int = 50, lease: timedelta = LEASE
) -> list[int]:
    """Take up to ``limit`` due rows (and rows whose lease expired) and commit the claim."""
    due = or_(
        and_(Reminder.state == ReminderState.PLANNED, Reminder.send_at_utc <= now),
        and_(Reminder.state == ReminderState.SENDING, Reminder.lease_until_utc < now),
    )
    ids = list(
        session.scalars(
            select(Reminder.id)
            .where(due)
            .order_by(Reminder.send_at_utc, Reminder.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(Reminder)
            .where(Reminder.id.in_(ids))
            .values(
                state=ReminderState.SENDING,
                lease_until_utc=now + lease,
                attempts=Reminder.attempts + 1,
                changed_utc=now,
            )
        )
    session.commit()
    return ids


def _finish(row: Reminder, state: ReminderState, reason: str, now: datetime) -> None:
    row.state, row.reason, row.lease_until_utc, row.changed_utc = state, reason, None, now


def _recipient_phone(session: Session, row: Reminder, person: Person, now: datetime) -> str:
    if row.helper_grant_id is None:
        if person.phone_e164 is None:
            raise DomainError("no_phone", "no mobile number")
        return person.phone_e164
    grant = session.get(HelperGrant, row.helper_grant_id)
    live = grant is not None and active_grant(session, person, grant.helper_user_id, now=now)
    if grant is None or not live or not grant.receives_reminders:
        raise DomainError("not_applicable", "the helper no longer gets reminders")
    try:
        return to_e164(grant.contact)
    except DomainError:
        raise DomainError("no_phone", "no mobile number") from None


def sms_sight(session: Session, row: Reminder, person: Person, provider_id: int) -> Sight:
    """What a reminder to this recipient may say of one unit's visit: the one decision for
    SMS, on the same terms as every other surface.

    A text leaves our site: the place never when the person's identity is protected, the
    unit by name only where the person let reminders name it (and never a sensitive one).
    To the person: the visit in full otherwise. To a helper: at the helper's level; one
    who gets reminders without seeing the calendar is told time and place, which is what
    the reminder is for."""
    consent = session.scalars(
        select(UnitConsent).where(
            UnitConsent.person_id == person.id, UnitConsent.provider_id == provider_id
        )
    ).first()
    named = consent is not None and consent.named_in_sms and not consent.sensitive
    level = ViewLevel.FULL
    if row.helper_grant_id is not None:
        grant = session.get(HelperGrant, row.helper_grant_id)
        level = (grant.view_level if grant else None) or ViewLevel.TIME_PLACE
    return Sight(level, place=not person.protected_identity, unit_named=named)


def _visit_line(
    session: Session, row: Reminder, person: Person, booking: Booking
) -> texts.VisitLine:
    """What the text may say about one visit, as the person's choices and privacy allow."""
    provider = session.get(Provider, booking.provider_id)
    assert provider is not None
    facts = shown_facts(
        visit_facts(booking, row.visit_start_utc, booking.end_utc, booking.status.value),
        sms_sight(session, row, person, provider.id),
    )
    unit = facts.unit if facts.unit and not facts.unit_neutral else texts.NEUTRAL_UNIT
    if facts.busy_only:
        unit = texts.NEUTRAL_UNIT
    return texts.VisitLine(
        start=row.visit_start_utc,
        unit=unit,
        place=facts.location or (facts.unit_address if facts.unit else ""),
        mode=facts.mode,
        interpreter=facts.interpreter,
        unit_phone=facts.unit_phone,
        cancellation=facts.cancellation_terms,
        all_day=booking.all_day,
    )


def group_key(row: Reminder, zone: ZoneInfo) -> tuple[object, ...]:
    """Reminders that may share one SMS: same recipient, same send time, same visit day."""
    return (
        row.person_id,
        row.helper_grant_id,
        row.send_at_utc,
        row.visit_start_utc.astimezone(zone).date(),
        row.rule_label.startswith("transport"),
        row.rule_label == CANCELLED,
    )


def dispatch_group(
    session: Session,
    reminder_ids: list[int],
    *,
    sender: SmsSender,
    settings: DispatchSettings,
    now: datetime,
) -> None:
    """Send the claimed reminders of one recipient and day as one message; record each."""
    rows = [
        row
        for row in (session.get(Reminder, i, populate_existing=True) for i in reminder_ids)
        if row is not None and row.state == ReminderState.SENDING
    ]
    if not rows:
        session.commit()
        return
    person = session.get(Person, rows[0].person_id)
    assert person is not None
    lines: list[tuple[Reminder, texts.VisitLine, int]] = []
    to = ""
    for row in sorted(rows, key=lambda r: (r.visit_start_utc, r.id)):
        booking = session.get(Booking, row.booking_id)
        assert booking is not None
        if row.visit_start_utc <= now:
            _finish(row, ReminderState.WITHDRAWN, "too_late", now)  # e.g. after an outage
            continue
        notice = row.rule_label == CANCELLED
        if booking.status == BookingStatus.CANCELLED and not notice:
            _finish(row, ReminderState.WITHDRAWN, "visit_changed", now)
            continue
        try:
            to = _recipient_phone(session, row, person, now)
        except DomainError as exc:
            _finish(row, ReminderState.WITHDRAWN, exc.code, now)
            continue
        if session.get(SmsOptOut, to) is not None:
            _finish(row, ReminderState.WITHDRAWN, "opted_out", now)  # replied STOPP
            continue
        lines.append((row, _visit_line(session, row, person, booking), booking.id))
    if lines:
        first = lines[0][0]
        base = settings.public_base_url
        message = texts.compose(
            [line for _, line, _ in lines],
            zone=ZoneInfo(person.timezone),
            link=f"{base}/b/{lines[0][2]}" if base and len(lines) == 1 else base,
            for_name=person.name.split()[0] if first.helper_grant_id is not None else "",
            transport=first.rule_label.startswith("transport"),
            cancelled=first.rule_label == CANCELLED,
        )
        for row, _, _ in lines:
            row.body, row.segments = message.text, message.segments.count
        session.commit()  # the text is on record before it leaves
        validity = int((lines[0][0].visit_start_utc - now).total_seconds())
        _send([row for row, _, _ in lines], sender, to, message.text, validity, now)
    session.commit()


def _send(
    rows: list[Reminder], sender: SmsSender, to: str, body: str, validity: int, now: datetime
) -> None:
    try:
        sent = sender.send(to, body, validity_seconds=min(validity, MAX_VALIDITY_SECONDS))
    except SmsError as exc:
        for row in rows:
            if exc.permanent or row.attempts >= MAX_ATTEMPTS:
                _finish(row, ReminderState.FAILED, exc.code, now)
            else:
                # Back in the queue a little later: 1, 2, 4, 8 minutes.
                row.send_at_utc = now + BACKOFF * 2 ** (row.attempts - 1)
                _finish(row, ReminderState.PLANNED, f"retry:{exc.code}", now)
        return
    rows[0].message_sid = sent.sid
    _finish(rows[0], ReminderState.SENT, "", now)
    for row in rows[1:]:
        # Shared the first one's message; its delivery reports update these too.
        _finish(row, ReminderState.SENT, f"with:{rows[0].id}", now)


def release(session: Session, ids: list[int], *, now: datetime) -> int:
    """Give back claimed rows that were not tried (their scheduler is stopping): they are
    due again at once for any scheduler, their attempt not counted; commits."""
    result = session.execute(
        update(Reminder)
        .where(Reminder.id.in_(ids), Reminder.state == ReminderState.SENDING)
        .values(
            state=ReminderState.PLANNED,
            lease_until_utc=None,
            attempts=Reminder.attempts - 1,
            changed_utc=now,
        )
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def dispatch_due(
    factory: sessionmaker[Session],
    *,
    sender: SmsSender,
    settings: DispatchSettings,
    clock: Callable[[], datetime],
    batch: int = 50,
    lease: timedelta = LEASE,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Claim and send until nothing is due; return how many were handled.

    When ``stopping()`` turns true, the message being sent is finished and the rows not
    yet tried are released, so another scheduler sends them without waiting for the lease.
    """
    handled = 0
    while not stopping():
        with factory() as session:
            ids = claim_due(session, now=clock(), limit=batch, lease=lease)
            groups: dict[tuple[object, ...], list[int]] = {}
            for row in session.scalars(select(Reminder).where(Reminder.id.in_(ids))):
                person = session.get(Person, row.person_id)
                assert person is not None
                groups.setdefault(group_key(row, ZoneInfo(person.timezone)), []).append(row.id)
            session.commit()
            waiting = list(groups.values())
            while waiting and not stopping():
                group = waiting.pop(0)
                dispatch_group(session, group, sender=sender, settings=settings, now=clock())
                handled += len(group)
            if waiting:
                release(session, [i for group in waiting for i in group], now=clock())
                return handled
        if len(ids) < batch:
            return handled
    return handled


def record_delivery(
    session: Session, *, sid: str, status: str, error_code: str, now: datetime
) -> int:
    """Apply a delivery report to the reminder sent as ``sid`` and those that shared its
    message; return how many rows changed. Unknown SIDs and in-between states change
    nothing; a report never moves a row backwards."""
    first = session.scalars(select(Reminder).where(Reminder.message_sid == sid)).first()
    if first is None or status not in ("delivered", "undelivered", "failed"):
        session.commit()
        return 0
    rows = [first, *session.scalars(select(Reminder).where(Reminder.reason == f"with:{first.id}"))]
    changed = 0
    for row in rows:
        if row.state != ReminderState.SENT:
            continue  # already delivered or failed: a late or repeated report changes nothing
        if status == "delivered":
            row.state, row.changed_utc = ReminderState.DELIVERED, now
        else:
            _finish(row, ReminderState.FAILED, error_code or status, now)
        changed += 1
    session.commit()
    return changed
