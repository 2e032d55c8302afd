"""Our own shapes for bookings arriving from a provider, whatever system sent them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calendar_app.domain.photos import PhotoData


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
    # What a booking system says of its time (crm:scheduling's time type and care type)
    # and what the person may do there; None where the system does not say.
    time_type: str | None = None
    care_type: str | None = None
    cancel_allowed: bool | None = None
    rebook_allowed: bool | None = None
    message_allowed: bool | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return (self.uid, self.recurrence_key)

    @classmethod
    def single(
        cls, uid: str, start_utc: datetime, end_utc: datetime, **details: Any
    ) -> IncomingBooking:
        """A one-off visit at a time (no series, not all day), as booking systems send them;
        ``details`` are the other fields (``status`` among them)."""
        return cls(
            uid=uid,
            recurrence_key="",
            start_utc=start_utc,
            end_utc=end_utc,
            all_day=False,
            start_date=None,
            end_date=None,
            tzid=details.pop("tzid", None),
            recurrence_ics=None,
            range_start_utc=start_utc,
            range_end_utc=end_utc,
            **details,
        )


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
    # Practitioner photos the bookings name (by digest), re-encoded, to be stored with them.
    photos: tuple[PhotoData, ...] = field(default_factory=tuple)


def read_to_json(read: ReadResult) -> str:
    """A read as JSON (to hold it for review); :func:`read_from_json` gives it back exactly,
    but for its photos, which are stored when the read arrives, held or not."""
    return json.dumps(
        {
            "complete": read.complete,
            "cancel_only": read.cancel_only,
            "bookings": [
                {f.name: _plain(getattr(b, f.name)) for f in dataclasses.fields(b)}
                for b in read.bookings
            ],
            "skipped": [dataclasses.asdict(s) for s in read.skipped],
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def read_from_json(text: str) -> ReadResult:
    data = json.loads(text)
    return ReadResult(
        bookings=tuple(
            IncomingBooking(**{name: _typed(name, value) for name, value in item.items()})
            for item in data["bookings"]
        ),
        skipped=tuple(SkippedEvent(**item) for item in data["skipped"]),
        complete=data["complete"],
        cancel_only=data["cancel_only"],
    )


_DATETIMES = {"start_utc", "end_utc", "range_start_utc", "range_end_utc", "last_modified_utc"}
_DATES = {"start_date", "end_date"}


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def _typed(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DATETIMES:
        return datetime.fromisoformat(str(value))
    if name in _DATES:
        return date.fromisoformat(str(value))
    return value
