"""The person's reminder rules, and the outbox rows planned from them.

:func:`replan` is the one place that turns rules, recipients and visits into outbox rows.
It runs inside the write transaction of whatever changed them (a booking, an import, a
rule) and periodically for the rolling horizon; it never commits. A row is updated in
place while planned, withdrawn with a reason when it no longer applies, and never touched
once a scheduler has claimed it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain import phone
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reminders import (
    DEFAULT_RULES,
    MAX_DAYS_BEFORE,
    Planned,
    QuietHours,
    Rule,
    RuleKind,
    Visit,
    plan,
)
from calendar_app.models import (
    Booking,
    BookingStatus,
    HelperGrant,
    Person,
    Provider,
    Reminder,
    ReminderRule,
    ReminderSettings,
    ReminderState,
    UnitConsent,
)
from calendar_app.services.access import Actor, active_grant, authorize
from calendar_app.services.calendar import merged_calendar
from calendar_app.services.locking import begin_person_write, calendar_changed

# Far enough ahead for the longest rule; the scheduler extends it day by day.
HORIZON_DAYS = MAX_DAYS_BEFORE + 2
# A claimed row belongs to the dispatcher: planning leaves it alone.
_SETTLED = (
    ReminderState.SENDING,
    ReminderState.SENT,
    ReminderState.DELIVERED,
    ReminderState.FAILED,
)


def rule_spec(rule: Rule) -> str:
    """A rule as stored with each outbox row, e.g. ``days_before 2 18:00``."""
    if rule.kind == RuleKind.HOURS_BEFORE:
        return f"{rule.kind.value} {rule.hours}"
    assert rule.at is not None
    return f"{rule.kind.value} {rule.days} {rule.at:%H:%M}"


def person_rules(session: Session, person_id: int) -> list[Rule]:
    """The person's rules, or the default ("dagen före kl. 18.00") when there are none."""
    rows = session.scalars(
        select(ReminderRule).where(ReminderRule.person_id == person_id).order_by(ReminderRule.id)
    ).all()
    if not rows:
        return list(DEFAULT_RULES)
    return [Rule(r.id, r.kind, days=r.days, at=r.at_time, hours=r.hours) for r in rows]


@dataclass(frozen=True)
class Recipient:
    """Who gets a reminder: the person (``grant_id`` None) or a helper."""

    grant_id: int | None
    label: str
    phone_e164: str | None


def recipients(session: Session, person: Person, *, now: datetime) -> list[Recipient]:
    """The person (unless they turned it off) and every helper granted reminders."""
    settings = session.get(ReminderSettings, person.id)
    found = []
    if settings is None or settings.to_person:
        found.append(Recipient(None, "person", person.phone_e164))
    grants = session.scalars(
        select(HelperGrant).where(
            HelperGrant.person_id == person.id,
            HelperGrant.receives_reminders.is_(True),
            HelperGrant.helper_user_id.is_not(None),
            HelperGrant.withdrawn_utc.is_(None),
        )
    ).all()
    for grant in grants:
        if active_grant(session, person, grant.helper_user_id, now=now) is None:
            continue
        try:
            number: str | None = phone.to_e164(grant.contact)
        except DomainError:
            number = None  # an e-mail address, or a number that cannot take SMS
        found.append(Recipient(grant.id, grant.helper_name, number))
    return found


def _visits(session: Session, person: Person, zone: ZoneInfo, now: datetime) -> list[Visit]:
    first = now.astimezone(zone).date()
    occurrences = merged_calendar(
        session, person.id, first, first + timedelta(days=HORIZON_DAYS), zone=zone, max_days=400
    )
    opted_out = set(
        session.scalars(
            select(UnitConsent.provider_id).where(
                UnitConsent.person_id == person.id, UnitConsent.reminders.is_(False)
            )
        )
    )
    wanted = [
        o
        for o in occurrences
        if o.status != "cancelled"
        and not o.transparent
        and o.provider_kind != "personal"  # the person's own calendar needs no reminder
        and o.provider_id not in opted_out
        and o.start > now
    ]
    transport = set(
        session.scalars(
            select(Booking.id).where(
                Booking.id.in_({o.booking_id for o in wanted}), Booking.transport_needed
            )
        )
    )
    return [
        Visit(
            key=(o.booking_id, o.recurrence_key),
            start=o.start,
            all_day=o.all_day,
            start_date=o.start_date,
            transport_needed=o.booking_id in transport,
        )
        for o in wanted
    ]


def replan(session: Session, person_id: int, *, now: datetime) -> None:
    """Bring the person's outbox in line with their rules, helpers and visits (no commit)."""
    session.flush()  # the calendar query below reads through the connection
    person = session.get(Person, person_id)
    if person is None or person.deleted_utc is not None:
        return
    zone = ZoneInfo(person.timezone)
    settings = session.get(ReminderSettings, person_id)
    quiet = None
    if settings is not None and settings.quiet_start and settings.quiet_end:
        quiet = QuietHours(settings.quiet_start, settings.quiet_end)
    visits = _visits(session, person, zone, now)
    planned = plan(visits, person_rules(session, person_id), zone=zone, quiet=quiet, now=now)
    _reconcile(
        session,
        person_id,
        planned,
        recipients(session, person, now=now),
        now,
        visits={v.key for v in visits},
        until=now + timedelta(days=HORIZON_DAYS - 1),
    )
    if settings is not None and settings.cancellation_notice:
        _plan_cancellation_notices(session, person_id, now)


# The rule spec of a cancellation notice: not a rule of the person's, so re-planning
# leaves these rows alone.
CANCELLED = "cancelled"


def _plan_cancellation_notices(session: Session, person_id: int, now: datetime) -> None:
    """One text to each recipient who was reminded of a visit that is now cancelled."""
    reminded = session.scalars(
        select(Reminder)
        .join(Booking, Booking.id == Reminder.booking_id)
        .where(
            Reminder.person_id == person_id,
            Reminder.visit_start_utc > now,
            Reminder.state.in_([ReminderState.SENT, ReminderState.DELIVERED]),
            Reminder.rule_label != CANCELLED,
            Booking.status == BookingStatus.CANCELLED,
        )
    ).all()
    noticed = {
        (r.booking_id, r.occurrence_key, r.helper_grant_id)
        for r in session.scalars(
            select(Reminder).where(
                Reminder.person_id == person_id, Reminder.rule_label == CANCELLED
            )
        )
    }
    for row in reminded:
        key = (row.booking_id, row.occurrence_key, row.helper_grant_id)
        if key in noticed:
            continue
        noticed.add(key)
        session.add(
            Reminder(
                person_id=person_id,
                booking_id=row.booking_id,
                occurrence_key=row.occurrence_key,
                visit_start_utc=row.visit_start_utc,
                rule_label=CANCELLED,
                helper_grant_id=row.helper_grant_id,
                recipient_label=row.recipient_label,
                send_at_utc=now,
                state=ReminderState.PLANNED,
                reason="",
                attempts=0,
                body="",
                segments=0,
                created_utc=now,
                changed_utc=now,
            )
        )


Key = tuple[int, str, str, int | None]  # booking, occurrence, rule spec, helper grant


def _reconcile(
    session: Session,
    person_id: int,
    planned: list[Planned],
    people: list[Recipient],
    now: datetime,
    *,
    visits: set[tuple[int, str]],
    until: datetime,
) -> None:
    existing: dict[Key, list[Reminder]] = defaultdict(list)
    for row in session.scalars(
        select(Reminder).where(
            Reminder.person_id == person_id,
            Reminder.visit_start_utc > now,
            Reminder.visit_start_utc < until,
        )
    ):
        existing[(row.booking_id, row.occurrence_key, row.rule_label, row.helper_grant_id)].append(
            row
        )
    kept: set[int] = set()
    for item in planned:
        for recipient in people:
            booking_id, occurrence = item.visit.key
            key = (booking_id, occurrence, rule_spec(item.rule), recipient.grant_id)
            rows = existing.get(key, [])
            if any(r.state in _SETTLED and r.visit_start_utc == item.visit.start for r in rows):
                kept.update(r.id for r in rows)
                continue  # already on its way, or sent: never twice
            if item.late and _reminded(existing, booking_id, occurrence, recipient, item):
                continue
            open_rows = [r for r in rows if r.state not in _SETTLED]
            if open_rows:
                row = open_rows[0]
            else:
                row = Reminder(
                    person_id=person_id,
                    booking_id=booking_id,
                    occurrence_key=occurrence,
                    rule_label=rule_spec(item.rule),
                    helper_grant_id=recipient.grant_id,
                    attempts=0,
                    body="",
                    segments=0,
                    created_utc=now,
                )
                session.add(row)
            _place(row, item, recipient, now)
            if row.id is not None:
                kept.add(row.id)
    for rows in existing.values():
        for row in rows:
            if row.id not in kept and row.state not in _SETTLED and row.rule_label != CANCELLED:
                gone = (row.booking_id, row.occurrence_key) not in visits
                # The visit was cancelled, moved away or its unit's reminders turned off;
                # or the rules or recipients changed so that this one no longer applies.
                _withdraw(row, "visit_changed" if gone else "not_applicable", now)


def _reminded(
    existing: dict[Key, list[Reminder]],
    booking_id: int,
    occurrence: str,
    recipient: Recipient,
    item: Planned,
) -> bool:
    """Whether this recipient already got a reminder of this visit at this time."""
    return any(
        row.state in _SETTLED and row.visit_start_utc == item.visit.start
        for (b, o, _, g), rows in existing.items()
        if (b, o, g) == (booking_id, occurrence, recipient.grant_id)
        for row in rows
    )


def _place(row: Reminder, item: Planned, recipient: Recipient, now: datetime) -> None:
    row.rule_id = item.rule.id or None  # the default rule has no row
    row.visit_start_utc = item.visit.start
    row.send_at_utc = item.send_at
    row.recipient_label = recipient.label
    row.changed_utc = now
    if item.withdrawn:
        row.state, row.reason = ReminderState.WITHDRAWN, item.withdrawn
    elif recipient.phone_e164 is None:
        row.state, row.reason = ReminderState.WITHDRAWN, "no_phone"
    else:
        row.state, row.reason = ReminderState.PLANNED, ""


def _withdraw(row: Reminder, reason: str, now: datetime) -> None:
    row.state, row.reason, row.changed_utc = ReminderState.WITHDRAWN, reason, now


# --- the person's choices -------------------------------------------------------------


def _rule_from(kind: str, days: int | None, at: time | None, hours: int | None) -> Rule:
    try:
        rule_kind = RuleKind(kind)
    except ValueError:
        raise DomainError("reminder.rule", "unknown kind of reminder rule") from None
    return Rule(0, rule_kind, days=days or 0, at=at, hours=hours or 0).check()


def add_rule(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    kind: str,
    days: int | None = None,
    at: time | None = None,
    hours: int | None = None,
    now: datetime,
) -> ReminderRule:
    """Add a rule (the default stops applying once the person has one) and re-plan."""
    authorize(session, actor, person_id, "settings.write", now=now)
    rule = _rule_from(kind, days, at, hours)
    begin_person_write(session, person_id)
    if len(person_rules_rows(session, person_id)) >= 10:
        raise DomainError("reminder.too_many", "at most 10 reminder rules")
    row = ReminderRule(
        person_id=person_id,
        kind=rule.kind,
        days=rule.days,
        at_time=rule.at,
        hours=rule.hours,
        created_utc=now,
    )
    session.add(row)
    session.flush()
    calendar_changed(session, person_id)  # a feed's alarms follow the rules
    replan(session, person_id, now=now)
    session.commit()
    return row


def person_rules_rows(session: Session, person_id: int) -> list[ReminderRule]:
    """The person's own rule rows, oldest first."""
    return list(
        session.scalars(
            select(ReminderRule)
            .where(ReminderRule.person_id == person_id)
            .order_by(ReminderRule.id)
        )
    )


def remove_rule(
    session: Session, actor: Actor, person_id: int, rule_id: int, *, now: datetime
) -> None:
    """Remove a rule; its planned reminders are withdrawn, the sent ones stay on record."""
    authorize(session, actor, person_id, "settings.write", now=now)
    begin_person_write(session, person_id)
    row = session.get(ReminderRule, rule_id)
    if row is None or row.person_id != person_id:
        raise DomainError("reminder.not_found", "no such reminder rule")
    for reminder in session.scalars(select(Reminder).where(Reminder.rule_id == rule_id)):
        reminder.rule_id = None  # the record stays; its rule_label says what it was
        if reminder.state == ReminderState.PLANNED:
            _withdraw(reminder, "not_applicable", now)
    session.delete(row)
    session.flush()
    calendar_changed(session, person_id)  # a feed's alarms follow the rules
    replan(session, person_id, now=now)
    session.commit()


def set_reminder_settings(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    to_person: bool,
    quiet_start: time | None,
    quiet_end: time | None,
    now: datetime,
    cancellation_notice: bool | None = None,
) -> ReminderSettings:
    """Whether the person gets reminders themselves, and the quiet hours; re-plans."""
    authorize(session, actor, person_id, "settings.write", now=now)
    if (quiet_start is None) != (quiet_end is None):
        raise DomainError("reminder.quiet", "quiet hours need both a start and an end")
    begin_person_write(session, person_id)
    settings = session.get(ReminderSettings, person_id)
    if settings is None:
        settings = ReminderSettings(person_id=person_id)
        session.add(settings)
    settings.to_person = to_person
    if cancellation_notice is not None:
        settings.cancellation_notice = cancellation_notice
    elif settings.cancellation_notice is None:
        settings.cancellation_notice = False
    settings.quiet_start, settings.quiet_end = quiet_start, quiet_end
    settings.changed_utc = now
    session.flush()
    calendar_changed(session, person_id)  # a feed's alarms follow the rules
    replan(session, person_id, now=now)
    session.commit()
    return settings


def set_unit_reminders(
    session: Session,
    actor: Actor,
    person_id: int,
    provider_id: int,
    *,
    on: bool,
    now: datetime,
    named: bool | None = None,
) -> None:
    """Reminders for one unit's visits on or off (the per-unit opt-out), and whether they
    may name the unit; re-plans."""
    authorize(session, actor, person_id, "settings.write", now=now)
    if session.get(Provider, provider_id) is None:
        raise DomainError("provider.not_found", "no such unit")
    begin_person_write(session, person_id)
    consent = session.scalars(
        select(UnitConsent).where(
            UnitConsent.person_id == person_id, UnitConsent.provider_id == provider_id
        )
    ).first()
    if consent is None:
        consent = UnitConsent(person_id=person_id, provider_id=provider_id, changed_utc=now)
        session.add(consent)
    consent.reminders = on
    if named is not None:
        consent.named_in_sms = named
    session.flush()
    calendar_changed(session, person_id)  # a feed's alarms follow the rules
    replan(session, person_id, now=now)
    session.commit()


@dataclass(frozen=True)
class ReminderView:
    """Everything on "Påminnelser": rules, recipients, quiet hours, units and the outbox."""

    person_id: int
    person_name: str
    has_phone: bool
    rules: list[tuple[int, str]]  # rule id and spec; empty: the default applies
    to_person: bool
    cancellation_notice: bool
    quiet_start: time | None
    quiet_end: time | None
    units: list[tuple[int, str, bool, bool]]  # unit id, name, reminders on, named in SMS
    helpers: list[Recipient]
    reminders: list[Reminder]


def read_reminders(
    session: Session, actor: Actor, person_id: int, *, now: datetime
) -> ReminderView:
    """The person's reminder settings and every reminder from a week back on."""
    authorize(session, actor, person_id, "settings.read", now=now)
    person = session.get(Person, person_id)
    assert person is not None
    settings = session.get(ReminderSettings, person_id)
    consents = {
        c.provider_id: c
        for c in session.scalars(select(UnitConsent).where(UnitConsent.person_id == person_id))
    }
    units = session.execute(
        select(Provider.id, Provider.name)
        .where(Provider.id.in_(select(Booking.provider_id).where(Booking.person_id == person_id)))
        .where(Provider.kind != "personal")
        .order_by(Provider.name)
    ).all()
    view = ReminderView(
        person_id=person_id,
        person_name=person.name,
        has_phone=person.phone_e164 is not None,
        rules=[
            (r.id, rule_spec(Rule(r.id, r.kind, days=r.days, at=r.at_time, hours=r.hours)))
            for r in person_rules_rows(session, person_id)
        ],
        to_person=settings.to_person if settings else True,
        cancellation_notice=settings.cancellation_notice if settings else False,
        quiet_start=settings.quiet_start if settings else None,
        quiet_end=settings.quiet_end if settings else None,
        units=[
            (
                unit_id,
                name,
                unit_id not in consents or consents[unit_id].reminders,
                unit_id in consents and consents[unit_id].named_in_sms,
            )
            for unit_id, name in units
        ],
        helpers=[r for r in recipients(session, person, now=now) if r.grant_id is not None],
        reminders=list(
            session.scalars(
                select(Reminder)
                .where(
                    Reminder.person_id == person_id,
                    Reminder.visit_start_utc > now - timedelta(days=7),
                )
                .order_by(Reminder.send_at_utc, Reminder.id)
            )
        ),
    )
    session.commit()
    return view


def test_recipient(session: Session, actor: Actor, person_id: int, *, now: datetime) -> str:
    """The person's own number for a test message (the person or who manages settings)."""
    authorize(session, actor, person_id, "settings.write", now=now)
    person = session.get(Person, person_id)
    session.commit()
    if person is None or person.phone_e164 is None:
        raise DomainError("reminder.no_phone", "there is no mobile number to send to")
    return person.phone_e164


def booking_person(session: Session, booking_id: int) -> int:
    """The person a booking belongs to (the booking page itself checks who may see it)."""
    person_id = session.scalars(select(Booking.person_id).where(Booking.id == booking_id)).first()
    session.commit()
    if person_id is None:
        raise DomainError("booking.not_found", "no such booking")
    return int(person_id)
