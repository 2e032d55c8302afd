"""Our own shapes for bookings arriving from a provider, whatever system sent them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class IncomingBooking:
    """One VEVENT-like item as received: a single event, a series master or an override."""

    uid: str
    recurrence_key: str  # '' for single/master, else RECURRENCE-ID as YYYYMMDDTHHMMSSZ/YYYYMMDD
    start_utc: datetime
    end_utc: datetime
    all_day: bool
    start_date: date | None
    end_date: date | None
    tzid: str | None
    recurrence_ics: str | None
    range_start_utc: datetime
    range_end_utc: datetime | None
    status: str  # confirmed / tentative / cancelled
    sequence: int = 0
    last_modified_utc: datetime | None = None
    this_and_future: bool = False
    title: str = ""
    location: str = ""
    description: str = ""
    practitioner_name: str | None = None
    practitioner_photo: str | None = None
    mode: str = "in_person"
    interpreter: bool = False
    interpreter_language: str | None = None
    transport_needed: bool = False
    cancellation_terms: str | None = None
    no_show_fee: str | None = None
    transparent: bool = False

    @property
    def identity(self) -> tuple[str, str]:
        return (self.uid, self.recurrence_key)


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """A damaged single event left out of a read, reported by its UID."""

    uid: str | None
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one read of a source delivered.

    ``complete`` is true for a full listing (iCalendar without METHOD or METHOD:PUBLISH):
    only such a read may cancel what it no longer contains. ``cancel_only`` marks a
    METHOD:CANCEL message, whose items cancel the identities they name.
    """

    bookings: tuple[IncomingBooking, ...]
    skipped: tuple[SkippedEvent, ...] = field(default_factory=tuple)
    complete: bool = True
    cancel_only: bool = False
