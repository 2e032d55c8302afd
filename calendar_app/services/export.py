"""A copy of everything stored about a person (GDPR art. 15 and 20): JSON and iCalendar.

Each kind of row is exported field by field from explicit lists, so a secret column added
to a table later (a hash, a token) is never exported by accident.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any

import icalendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    AuditEvent,
    Booking,
    CareRelationship,
    HelperGrant,
    ImportRun,
    InboundSms,
    Person,
    PersonPreferences,
    PersonTimeWindow,
    Provider,
    Reminder,
    ReminderRule,
    ReminderSettings,
    Source,
    SourceReview,
    UnitConsent,
    User,
    UserSession,
)
from calendar_app.services.source_health import settings_of

PRODID = "-//Personkalendern//Export//SV"

# What the export shows of each kind of row. Listed by name rather than taken from the
# table, so that a secret added to a table later (a hash, a token) is not exported by itself.
PERSON_FIELDS = (
    "name",
    "personnummer",
    "phone_e164",
    "timezone",
    "protected_identity",
    "created_at",
    "deleted_utc",
)
ACCOUNT_FIELDS = ("username", "display_name", "role", "active", "staff_id")
SESSION_FIELDS = ("created_utc", "expires_utc", "ended_utc", "last_seen_utc", "method")
PREFERENCE_FIELDS = ("max_visits_per_day", "travel_buffer_minutes", "home_address", "changed_utc")
TIME_WINDOW_FIELDS = ("kind", "label", "weekdays", "start_time", "end_time")
BOOKING_FIELDS = (
    "id",
    "uid",
    "recurrence_key",
    "this_and_future",
    "start_utc",
    "end_utc",
    "all_day",
    "start_date",
    "end_date",
    "tzid",
    "recurrence_ics",
    "title",
    "location",
    "description",
    "practitioner_name",
    "practitioner_photo",
    "mode",
    "interpreter",
    "interpreter_language",
    "transport_needed",
    "cancellation_terms",
    "no_show_fee",
    "transparent",
    "time_type",
    "care_type",
    "cancel_allowed",
    "rebook_allowed",
    "message_allowed",
    "status",
    "origin",
    "sequence",
    "cancelled_from_utc",
    "last_modified_utc",
    "first_seen_utc",
    "last_seen_utc",
    "clash_override_reason",
)
CONSENT_FIELDS = ("others_level", "sensitive", "reminders", "changed_utc")
INBOUND_FIELDS = ("received_utc", "kind", "booking_id", "body")
REMINDER_RULE_FIELDS = ("kind", "days", "at_time", "hours", "created_utc")
REMINDER_SETTINGS_FIELDS = ("to_person", "quiet_start", "quiet_end", "changed_utc")
REMINDER_FIELDS = (
    "booking_id",
    "visit_start_utc",
    "rule_label",
    "recipient_label",
    "send_at_utc",
    "state",
    "reason",
    "body",
    "segments",
    "created_utc",
    "changed_utc",
)
RELATIONSHIP_FIELDS = ("created_by", "started_utc", "ended_utc", "ended_by")
GRANT_FIELDS = (
    "helper_name",
    "contact",
    "basis",
    "view_level",
    "receives_reminders",
    "manages_settings",
    "decision_reference",
    "valid_until",
    "granted_utc",
    "granted_by",
    "withdrawn_utc",
)
IMPORT_RUN_FIELDS = (
    "at_utc",
    "complete",
    "added",
    "updated",
    "cancelled",
    "unchanged",
    "skipped",
)
SOURCE_FIELDS = (
    "name",
    "adapter",
    "poll_minutes",
    "enabled",
    "state",
    "last_success_utc",
    "last_error_utc",
    "last_error_code",
    "created_utc",
)
REVIEW_FIELDS = (
    "state",
    "read_utc",
    "future_before",
    "would_cancel",
    "would_add",
    "would_update",
    "decided_utc",
    "decided_by",
)
AUDIT_FIELDS = ("at_utc", "actor_label", "actor_role", "actor_unit", "action", "detail")


def _plain(value: Any) -> Any:
    """A column value as JSON: instants and dates in ISO 8601, enums by their value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _fields(row: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    return person


def _bookings(session: Session, person_id: int) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.person_id == person_id)
            .order_by(Booking.range_start_utc, Booking.id)
        )
    )


def _unit_names(session: Session, provider_ids: Iterable[int]) -> dict[int, str]:
    ids = set(provider_ids)
    return {p.id: p.name for p in session.scalars(select(Provider).where(Provider.id.in_(ids)))}


def _skipped_detail(text: str) -> Any:
    try:
        return json.loads(text) if text else []
    except ValueError:
        return text


def export_person_data(session: Session, person_id: int, *, now: datetime) -> dict[str, Any]:
    """Everything stored about the person, as JSON-ready data; writes nothing."""
    person = _person(session, person_id)
    accounts = list(
        session.scalars(select(User).where(User.person_id == person_id).order_by(User.id))
    )
    logins = list(
        session.scalars(
            select(UserSession)
            .where(UserSession.user_id.in_([a.id for a in accounts]))
            .order_by(UserSession.created_utc, UserSession.id)
        )
    )
    bookings = _bookings(session, person_id)
    consents = list(
        session.scalars(
            select(UnitConsent).where(UnitConsent.person_id == person_id).order_by(UnitConsent.id)
        )
    )
    relationships = list(
        session.scalars(
            select(CareRelationship)
            .where(CareRelationship.person_id == person_id)
            .order_by(CareRelationship.started_utc, CareRelationship.id)
        )
    )
    grants = list(
        session.scalars(
            select(HelperGrant)
            .where(HelperGrant.person_id == person_id)
            .order_by(HelperGrant.granted_utc, HelperGrant.id)
        )
    )
    runs = list(
        session.scalars(
            select(ImportRun)
            .where(ImportRun.person_id == person_id)
            .order_by(ImportRun.at_utc, ImportRun.id)
        )
    )
    synced = list(
        session.scalars(select(Source).where(Source.person_id == person_id).order_by(Source.id))
    )
    reviews = list(
        session.scalars(
            select(SourceReview)
            .where(SourceReview.person_id == person_id)
            .order_by(SourceReview.id)
        )
    )
    source_ids = {b.source_id for b in bookings} | {r.source_id for r in runs}
    sources = {s.id: s for s in session.scalars(select(Source).where(Source.id.in_(source_ids)))}
    units = _unit_names(
        session,
        [b.provider_id for b in bookings]
        + [c.provider_id for c in consents]
        + [r.provider_id for r in relationships]
        + [s.provider_id for s in sources.values()]
        + [s.provider_id for s in synced],
    )
    preferences = session.get(PersonPreferences, person_id)
    windows = session.scalars(
        select(PersonTimeWindow)
        .where(PersonTimeWindow.person_id == person_id)
        .order_by(PersonTimeWindow.id)
    )
    rules = session.scalars(
        select(ReminderRule).where(ReminderRule.person_id == person_id).order_by(ReminderRule.id)
    )
    reminder_settings = session.get(ReminderSettings, person_id)
    outbox = session.scalars(
        select(Reminder).where(Reminder.person_id == person_id).order_by(Reminder.id)
    )
    inbound = session.scalars(
        select(InboundSms).where(InboundSms.person_id == person_id).order_by(InboundSms.id)
    )
    audit = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.person_id == person_id)
        .order_by(AuditEvent.at_utc, AuditEvent.id)
    )
    data = {
        "exported_utc": _plain(now),
        "person": _fields(person, PERSON_FIELDS),
        "accounts": [
            {
                **_fields(account, ACCOUNT_FIELDS),
                "sessions": [_fields(s, SESSION_FIELDS) for s in logins if s.user_id == account.id],
            }
            for account in accounts
        ],
        "preferences": _fields(preferences, PREFERENCE_FIELDS) if preferences else None,
        "time_windows": [_fields(w, TIME_WINDOW_FIELDS) for w in windows],
        "bookings": [
            {
                "unit": units[b.provider_id],
                "source": sources[b.source_id].name,
                **_fields(b, BOOKING_FIELDS),
            }
            for b in bookings
        ],
        "unit_consents": [
            {"unit": units[c.provider_id], **_fields(c, CONSENT_FIELDS)} for c in consents
        ],
        "care_relationships": [
            {"unit": units[r.provider_id], **_fields(r, RELATIONSHIP_FIELDS)} for r in relationships
        ],
        "helper_grants": [_fields(g, GRANT_FIELDS) for g in grants],
        "reminder_rules": [_fields(r, REMINDER_RULE_FIELDS) for r in rules],
        "reminder_settings": (
            _fields(reminder_settings, REMINDER_SETTINGS_FIELDS) if reminder_settings else None
        ),
        "reminders": [_fields(r, REMINDER_FIELDS) for r in outbox],
        "sms_replies": [_fields(m, INBOUND_FIELDS) for m in inbound],
        "import_runs": [
            {
                "unit": units[sources[r.source_id].provider_id],
                "source": sources[r.source_id].name,
                **_fields(r, IMPORT_RUN_FIELDS),
                "skipped_detail": _skipped_detail(r.skipped_detail),
            }
            for r in runs
        ],
        # Where bookings are fetched from; the address itself is sealed and not exported
        # (only its host), like a password.
        "sources": [
            {
                "unit": units[s.provider_id],
                "address": settings_of(s).get("display", ""),
                **_fields(s, SOURCE_FIELDS),
                "changes_held_for_review": [
                    _fields(r, REVIEW_FIELDS) for r in reviews if r.source_id == s.id
                ],
            }
            for s in synced
        ],
        "audit_log": [_fields(e, AUDIT_FIELDS) for e in audit],
    }
    session.commit()  # ends the read transaction (SQLite holds its write lock until then)
    return data


RECURRENCE_PROPERTIES = ("DTSTART", "DTEND", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def export_person_ics(session: Session, person_id: int, *, now: datetime) -> bytes:
    """The person's bookings as one iCalendar file: series, overrides and cancellations kept."""
    _person(session, person_id)
    bookings = _bookings(session, person_id)
    units = _unit_names(session, [b.provider_id for b in bookings])
    session.commit()  # ends the read transaction
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    for booking in bookings:
        calendar.add_component(_vevent(booking, units[booking.provider_id], now))
    calendar.add_missing_timezones(*_zone_span(bookings))
    return calendar.to_ical()


def _vevent(booking: Booking, unit: str, now: datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("UID", booking.uid)
    event.add("DTSTAMP", now)
    if booking.recurrence_ics is not None:
        # The times and rules exactly as received, so that the series expands as it does here.
        stored = icalendar.Event.from_ical(booking.recurrence_ics)
        for name in RECURRENCE_PROPERTIES:
            if name in stored:
                event[name] = stored[name]
    elif booking.all_day and booking.start_date is not None and booking.end_date is not None:
        event.add("DTSTART", booking.start_date)
        event.add("DTEND", booking.end_date)
    else:
        event.add("DTSTART", booking.start_utc)
        event.add("DTEND", booking.end_utc)
    event.add("SUMMARY", booking.title or unit)
    if booking.location:
        event.add("LOCATION", booking.location)
    if booking.description:
        event.add("DESCRIPTION", booking.description)
    event.add("CATEGORIES", [unit])
    event.add("STATUS", booking.status.value.upper())
    event.add("SEQUENCE", booking.sequence)
    if booking.transparent:
        event.add("TRANSP", "TRANSPARENT")
    if booking.cancelled_from_utc is not None:
        # iCalendar cannot cancel "the rest of a series" without rewriting it; say when.
        event.add(
            "X-PERSONKALENDERN-CANCELLED-FROM",
            booking.cancelled_from_utc.strftime("%Y%m%dT%H%M%SZ"),
        )
    return event


def _zone_span(bookings: list[Booking]) -> tuple[date, date]:
    """The dates the VTIMEZONE rules must cover: icalendar's default, widened to the data."""
    first, last = date(1970, 1, 1), date(2038, 1, 1)
    for booking in bookings:
        first = min(first, booking.range_start_utc.date() - timedelta(days=1))
        last = max(last, (booking.range_end_utc or booking.end_utc).date() + timedelta(days=1))
    return first, last
