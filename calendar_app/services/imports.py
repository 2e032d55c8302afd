"""Importing an iCalendar file into one person's calendar (one transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.bookings import IncomingBooking, ReadResult, SkippedEvent
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reconcile import ABSENT, StoredBooking, content_hash, plan_read
from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    ImportRun,
    Person,
    ProviderKind,
    VisitMode,
)
from calendar_app.providers import ics
from calendar_app.services.directory import (
    ensure_care_relationship,
    get_or_add_provider,
    get_or_add_source,
)
from calendar_app.services.locking import begin_person_write


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

    A file damaged as a whole raises ``ProviderError`` before anything is written.
    """
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    zone = person.timezone
    session.rollback()  # parse outside the write lock; the write transaction starts below
    read = ics.parse(data, default_zone=zone, max_bytes=max_bytes)
    begin_person_write(session, person_id)
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
    rows = session.scalars(
        select(Booking).where(Booking.person_id == person_id, Booking.source_id == source_id)
    ).all()
    by_id = {row.id: row for row in rows}
    stored = [
        StoredBooking(
            id=row.id,
            uid=row.uid,
            recurrence_key=row.recurrence_key,
            content_hash=row.content_hash,
            sequence=row.sequence,
            cancelled=row.status == BookingStatus.CANCELLED or row.cancelled_from_utc is not None,
            start_utc=row.start_utc,
            range_start_utc=row.range_start_utc,
            range_end_utc=row.range_end_utc,
            is_series=row.recurrence_ics is not None and row.recurrence_key == "",
        )
        for row in rows
    ]
    plan = plan_read(stored, read, now=now)
    for incoming in plan.add:
        row = Booking(
            person_id=person_id,
            source_id=source_id,
            provider_id=provider_id,
            origin=BookingOrigin.SYNCED,
            first_seen_utc=now,
        )
        _fill(row, incoming, now)
        session.add(row)
    for row_id, incoming in plan.update:
        _fill(by_id[row_id], incoming, now)
    for row_id in plan.seen:
        by_id[row_id].last_seen_utc = now
    for cancel in plan.cancel:
        row = by_id[cancel.id]
        if cancel.from_utc is None:
            row.status = BookingStatus.CANCELLED
        else:
            row.cancelled_from_utc = cancel.from_utc
        row.content_hash = ABSENT
    summary = ImportSummary(
        added=plan.added,
        updated=plan.updated,
        cancelled=plan.cancelled,
        unchanged=plan.unchanged,
        skipped=read.skipped,
    )
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


def _fill(row: Booking, incoming: IncomingBooking, now: datetime) -> None:
    row.uid = incoming.uid
    row.recurrence_key = incoming.recurrence_key
    row.this_and_future = incoming.this_and_future
    row.start_utc = incoming.start_utc
    row.end_utc = incoming.end_utc
    row.tzid = incoming.tzid
    row.all_day = incoming.all_day
    row.start_date = incoming.start_date
    row.end_date = incoming.end_date
    row.recurrence_ics = incoming.recurrence_ics
    row.range_start_utc = incoming.range_start_utc
    row.range_end_utc = incoming.range_end_utc
    row.title = incoming.title
    row.location = incoming.location
    row.description = incoming.description
    row.practitioner_name = incoming.practitioner_name
    row.practitioner_photo = incoming.practitioner_photo
    row.mode = VisitMode(incoming.mode)
    row.interpreter = incoming.interpreter
    row.interpreter_language = incoming.interpreter_language
    row.transport_needed = incoming.transport_needed
    row.cancellation_terms = incoming.cancellation_terms
    row.no_show_fee = incoming.no_show_fee
    row.transparent = incoming.transparent
    row.status = BookingStatus(incoming.status)
    row.cancelled_from_utc = None
    row.sequence = incoming.sequence
    row.last_modified_utc = incoming.last_modified_utc
    row.content_hash = content_hash(incoming)
    row.last_seen_utc = now
