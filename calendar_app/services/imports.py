"""Importing an iCalendar file into one person's calendar (one transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from calendar_app.domain.bookings import IncomingBooking, ReadResult, SkippedEvent
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reconcile import ABSENT, Plan, StoredBooking, content_hash, plan_read
from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    ImportRun,
    Person,
    ProviderKind,
    VisitMode,
)
from calendar_app.providers import ProviderError, ics
from calendar_app.services.directory import (
    ensure_care_relationship,
    get_or_add_provider,
    get_or_add_source,
)
from calendar_app.services.locking import begin_person_write, calendar_changed
from calendar_app.services.reminders import replan


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    cancelled: int
    unchanged: int
    skipped: tuple[SkippedEvent, ...]

    def line(self) -> str:
        """The one-line summary printed by the CLI."""
        return (
            f"added {self.added}, updated {self.updated}, cancelled {self.cancelled}, "
            f"unchanged {self.unchanged}, skipped {len(self.skipped)}"
        )


class NothingUsable(ProviderError):
    """A file that has events, none of them readable: refused like a damaged file, since
    "added 0, skipped 3" would read as success. ``skipped`` says what was wrong with each."""

    def __init__(self, skipped: tuple[SkippedEvent, ...]) -> None:
        super().__init__(
            "ics.nothing_usable",
            f"no event in the file could be read ({len(skipped)} skipped); nothing was imported",
        )
        self.skipped = skipped


def import_ics_file(
    session: Session,
    *,
    person_id: int,
    provider_name: str,
    provider_kind: ProviderKind | None,
    source_name: str,
    data: bytes,
    now: datetime,
    max_bytes: int,
) -> ImportSummary:
    """Parse ``data`` and merge it into the person's bookings from that source.

    A file damaged as a whole, or whose every event is unreadable (:class:`NothingUsable`),
    raises ``ProviderError`` before anything is written. A calendar with no events at all
    is a valid read: as a complete read it may cancel what the source no longer lists.
    """
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    zone = person.timezone
    session.rollback()  # parse outside the write lock; the write transaction starts below
    read = ics.parse(data, default_zone=zone, max_bytes=max_bytes)
    if read.skipped and not read.bookings:
        raise NothingUsable(read.skipped)
    locked = begin_person_write(session, person_id)
    if locked is None or locked.deleted_utc is not None:
        session.rollback()
        # The person asked for their data to be deleted: nothing of theirs comes back.
        raise DomainError("person.deleted", "the person's data has been deleted")
    provider = get_or_add_provider(session, provider_name, provider_kind)
    source = get_or_add_source(session, provider, source_name, ics.ADAPTER)
    summary = apply_read(
        session,
        person_id=person_id,
        provider_id=provider.id,
        source_id=source.id,
        read=read,
        now=now,
    )
    source.last_read_at = now
    ensure_care_relationship(session, person_id, provider, created_by="source", now=now)
    session.commit()
    return summary


def apply_read(
    session: Session,
    *,
    person_id: int,
    provider_id: int,
    source_id: int,
    read: ReadResult,
    now: datetime,
) -> ImportSummary:
    """Apply one read to the stored bookings of (person, source); the caller commits."""
    stored = load_stored(session, person_id, source_id)
    plan = plan_read([s.view for s in stored.values()], read, now=now)
    return apply_plan(
        session,
        person_id=person_id,
        provider_id=provider_id,
        source_id=source_id,
        stored=stored,
        plan=plan,
        read=read,
        now=now,
    )


@dataclass(frozen=True)
class Stored:
    """A stored booking as the merge planner sees it, with its row to change."""

    row: Booking
    view: StoredBooking


def load_stored(session: Session, person_id: int, source_id: int) -> dict[int, Stored]:
    """The person's bookings from one source, by id, for :func:`plan_read`."""
    rows = session.scalars(
        select(Booking).where(Booking.person_id == person_id, Booking.source_id == source_id)
    ).all()
    return {
        row.id: Stored(
            row,
            StoredBooking(
                id=row.id,
                uid=row.uid,
                recurrence_key=row.recurrence_key,
                content_hash=row.content_hash,
                sequence=row.sequence,
                cancelled=row.status == BookingStatus.CANCELLED
                or row.cancelled_from_utc is not None,
                start_utc=row.start_utc,
                range_start_utc=row.range_start_utc,
                range_end_utc=row.range_end_utc,
                is_series=row.recurrence_ics is not None and row.recurrence_key == "",
            ),
        )
        for row in rows
    }


def apply_plan(
    session: Session,
    *,
    person_id: int,
    provider_id: int,
    source_id: int,
    stored: dict[int, Stored],
    plan: Plan,
    read: ReadResult,
    now: datetime,
    record_unchanged: bool = True,
) -> ImportSummary:
    """Write a planned read; ``record_unchanged=False`` keeps no run for a read that
    changed nothing (a scheduled poll), so polling does not grow the table."""
    if plan.add or plan.update or plan.cancel:
        calendar_changed(session, person_id)
    if plan.add:
        # One bulk INSERT without RETURNING: the new ids are not needed here, and fetching
        # them back costs PostgreSQL more than the insert itself.
        session.execute(
            insert(Booking),
            [
                {
                    **_values(incoming, now),
                    "person_id": person_id,
                    "source_id": source_id,
                    "provider_id": provider_id,
                    "origin": BookingOrigin.SYNCED,
                    "first_seen_utc": now,
                }
                for incoming in plan.add
            ],
        )
    for row_id, incoming in plan.update:
        row = stored[row_id].row
        before = _timing(row)
        for name, value in _values(incoming, now).items():
            setattr(row, name, value)
        if _timing(row) != before:
            row.feed_sequence += 1
    for row_id in plan.seen:
        stored[row_id].row.last_seen_utc = now
    for cancel in plan.cancel:
        row = stored[cancel.id].row
        if cancel.from_utc is None:
            row.status = BookingStatus.CANCELLED
        else:
            row.cancelled_from_utc = cancel.from_utc
        row.content_hash = ABSENT
        row.feed_sequence += 1
        row.changed_utc = now
    changed = bool(plan.add or plan.update or plan.cancel)
    if changed:
        replan(session, person_id, now=now)
    summary = ImportSummary(
        added=plan.added,
        updated=plan.updated,
        cancelled=plan.cancelled,
        unchanged=plan.unchanged,
        skipped=read.skipped,
    )
    if record_unchanged or changed or read.skipped:
        session.add(
            ImportRun(
                source_id=source_id,
                person_id=person_id,
                at_utc=now,
                complete=read.complete,
                added=summary.added,
                updated=summary.updated,
                cancelled=summary.cancelled,
                unchanged=summary.unchanged,
                skipped=len(summary.skipped),
                skipped_detail=json.dumps(
                    [{"uid": s.uid, "code": s.code, "reason": s.reason} for s in read.skipped],
                    ensure_ascii=False,
                ),
            )
        )
    return summary


def _timing(row: Booking) -> tuple[Any, ...]:
    """What a change of bumps the booking's feed SEQUENCE: its times and its status."""
    return (
        row.start_utc,
        row.end_utc,
        row.all_day,
        row.start_date,
        row.end_date,
        row.recurrence_ics,
        row.status,
        row.cancelled_from_utc,
    )


def _values(incoming: IncomingBooking, now: datetime) -> dict[str, Any]:
    """The stored columns of a booking as received."""
    return {
        "uid": incoming.uid,
        "recurrence_key": incoming.recurrence_key,
        "this_and_future": incoming.this_and_future,
        "start_utc": incoming.start_utc,
        "end_utc": incoming.end_utc,
        "tzid": incoming.tzid,
        "all_day": incoming.all_day,
        "start_date": incoming.start_date,
        "end_date": incoming.end_date,
        "recurrence_ics": incoming.recurrence_ics,
        "range_start_utc": incoming.range_start_utc,
        "range_end_utc": incoming.range_end_utc,
        "title": incoming.title,
        "location": incoming.location,
        "description": incoming.description,
        "practitioner_name": incoming.practitioner_name,
        "practitioner_photo": incoming.practitioner_photo,
        "mode": VisitMode(incoming.mode),
        "interpreter": incoming.interpreter,
        "interpreter_language": incoming.interpreter_language,
        "transport_needed": incoming.transport_needed,
        "cancellation_terms": incoming.cancellation_terms,
        "no_show_fee": incoming.no_show_fee,
        "transparent": incoming.transparent,
        "time_type": incoming.time_type,
        "care_type": incoming.care_type,
        "cancel_allowed": incoming.cancel_allowed,
        "rebook_allowed": incoming.rebook_allowed,
        "message_allowed": incoming.message_allowed,
        "status": BookingStatus(incoming.status),
        "cancelled_from_utc": None,
        "sequence": incoming.sequence,
        "last_modified_utc": incoming.last_modified_utc,
        "content_hash": content_hash(incoming),
        "last_seen_utc": now,
        "changed_utc": now,
    }
