"""Erasure of a person's data on their request (GDPR art. 17), in one transaction.

Kept after deletion, and why:

* The audit log (``audit_event``) stays whole, and with it the person row's id and
  personnummer (name and phone cleared, ``deleted_utc`` set): every read of health data by
  someone other than the person must stay accountable afterwards (cf. patientdatalagen
  4 kap. 3 §). The log is append-only; the database refuses to change or delete its rows.
* The person's accounts stay as inactive, renamed rows without a usable password, because
  audit rows may name them as the reader; their sessions are ended, not removed.
* The bookings in the care providers' own systems are theirs, not ours: deleting the copies
  here does not touch the booking system or journal they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    Booking,
    CareRelationship,
    Feed,
    FeedRender,
    HelperGrant,
    ImportRun,
    InboundSms,
    LoginFailure,
    PersonPreferences,
    PersonTimeWindow,
    Reminder,
    ReminderRule,
    ReminderSettings,
    Source,
    SourceReview,
    UnitConsent,
    User,
    UserSession,
)
from calendar_app.services.identity import NO_PASSWORD
from calendar_app.services.locking import begin_person_write, calendar_changed

DELETED_NAME = "Raderad person"
DELETED_ACCOUNT_NAME = "Raderat konto"


@dataclass(frozen=True)
class DeletionReport:
    """How many rows of each kind the deletion removed (or, for accounts, emptied)."""

    reminders: int
    inbound_messages: int
    bookings: int
    reminder_rules: int
    reminder_settings: int
    preferences: int
    time_windows: int
    unit_consents: int
    care_relationships: int
    helper_grants: int
    feeds: int
    import_runs: int
    source_reviews: int
    sources: int
    sessions_ended: int
    accounts_scrubbed: int
    login_failures: int


# The person's own rows, removed outright, each before what it refers to.
_PERSON_ROWS: tuple[tuple[str, Any], ...] = (
    ("reminders", Reminder),
    ("inbound_messages", InboundSms),
    ("bookings", Booking),
    ("reminder_rules", ReminderRule),
    ("reminder_settings", ReminderSettings),
    ("preferences", PersonPreferences),
    ("time_windows", PersonTimeWindow),
    ("unit_consents", UnitConsent),
    ("care_relationships", CareRelationship),
    # Feeds (their renders first) before the helpers' grants their feeds refer to.
    ("feeds", Feed),
    ("helper_grants", HelperGrant),
    ("import_runs", ImportRun),
    # The person's synced sources (with their sealed addresses) and held reads; a source
    # goes after the bookings and import runs that refer to it.
    ("source_reviews", SourceReview),
    ("sources", Source),
)


def delete_person(session: Session, person_id: int, *, now: datetime) -> DeletionReport:
    """Erase the person's data in one transaction; only what the audit log needs stays."""
    try:
        report = _erase(session, person_id, now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return report


def _erase(session: Session, person_id: int, now: datetime) -> DeletionReport:
    person = begin_person_write(session, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    if person.deleted_utc is not None:
        raise DomainError("person.deleted", "the person's data has already been deleted")
    session.execute(
        delete(FeedRender).where(
            FeedRender.feed_id.in_(select(Feed.id).where(Feed.person_id == person_id))
        )
    )
    removed = {name: _delete_rows(session, model, person_id) for name, model in _PERSON_ROWS}
    sessions_ended, accounts, failures = _scrub_accounts(session, person_id, now)
    person.name = DELETED_NAME
    person.phone_e164 = None
    person.deleted_utc = now
    calendar_changed(session, person_id)  # and with it the cached merged calendars
    return DeletionReport(
        **removed,
        sessions_ended=sessions_ended,
        accounts_scrubbed=accounts,
        login_failures=failures,
    )


def _rowcount(session: Session, statement: Any) -> int:
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount or 0)


def _delete_rows(session: Session, model: Any, person_id: int) -> int:
    return _rowcount(session, delete(model).where(model.person_id == person_id))


def _scrub_accounts(session: Session, person_id: int, now: datetime) -> tuple[int, int, int]:
    """End the sessions of the person's accounts and empty the accounts; the rows stay,
    since audit rows may name them as the reader."""
    accounts = list(session.scalars(select(User).where(User.person_id == person_id)))
    ended = _rowcount(
        session,
        update(UserSession)
        .where(UserSession.user_id.in_([a.id for a in accounts]), UserSession.ended_utc.is_(None))
        .values(ended_utc=now),
    )
    failures = _rowcount(
        session,
        delete(LoginFailure).where(LoginFailure.username.in_([a.username for a in accounts])),
    )
    for account in accounts:
        account.username = f"deleted-{account.id}"
        account.display_name = DELETED_ACCOUNT_NAME
        account.password_hash = NO_PASSWORD
        account.staff_id = None
        account.active = False
    return ended, len(accounts), failures
