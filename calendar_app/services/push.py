"""Bookings that a provider system pushes instead of being read (/api/v1/push/bookings).

Each unit has one shared push source (name and adapter ``push``, no person); the provider's
own booking id is the booking's uid there, so a push is idempotent on it. A push is applied
as a one-booking read that is not complete (:func:`imports.apply_plan`): it never cancels
other bookings, and the calendar version, reminders and provenance change exactly as they
do for a file import or a sync. Each push is one transaction holding the unit's push source
and the person; any error rolls it back, and a push that changes nothing writes nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calendar_app.domain import personnummer
from calendar_app.domain.bookings import IncomingBooking, ReadResult
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reconcile import plan_read
from calendar_app.models import Booking, BookingStatus, Person, Provider, Source, VisitMode
from calendar_app.services.access import Actor, audit
from calendar_app.services.directory import PUSH_SOURCE, ensure_care_relationship
from calendar_app.services.imports import Stored, apply_plan, load_stored
from calendar_app.services.locking import begin_person_write

SCOPE = "bookings:push"
SOURCE_NAME = ADAPTER = PUSH_SOURCE

EXTERNAL_ID = re.compile(r"[A-Za-z0-9._~:@+=-]{1,200}")
# Free-text fields and their longest length (the columns' sizes).
TEXTS = {
    "title": 500,
    "location": 500,
    "description": 2000,
    "practitioner_name": 200,
    "interpreter_language": 50,
    "cancellation_terms": 500,
    "no_show_fee": 200,
}
# The push API's words for a status, and ours.
STATUSES = {"booked": "confirmed", "tentative": "tentative", "cancelled": "cancelled"}
STATUS_WORD = {ours: theirs for theirs, ours in STATUSES.items()}
MODES = tuple(m.value for m in VisitMode)
MAX_SEQUENCE = 2**31 - 1
MAX_DURATION = timedelta(days=14)
# As far back and ahead as a sync reads.
EARLIEST, LATEST = timedelta(days=366), timedelta(days=731)
# What the answer says changed, by the provider's names (the columns' where they differ).
CHANGES = ("start", "end", "status", "sequence", "mode", "transport_needed", *TEXTS)
_COLUMN = {"start": "start_utc", "end": "end_utc"}


class PushConflict(DomainError):
    """The push contradicts what is stored (another person, an older sequence): 409."""


@dataclass(frozen=True)
class PushDraft:
    """A pushed booking as the API read it: each field of its type and within its limits.

    ``status`` is ours (confirmed, tentative, cancelled); the personnummer is as written.
    """

    personnummer: str = field(repr=False)
    start_utc: datetime
    end_utc: datetime
    status: str
    title: str
    location: str
    description: str
    practitioner_name: str | None
    mode: str
    interpreter_language: str | None
    transport_needed: bool
    cancellation_terms: str | None
    no_show_fee: str | None
    sequence: int | None  # None: the provider keeps no sequence; the stored one stays


@dataclass(frozen=True)
class PushedBooking:
    """What is stored for one of the unit's booking ids, as the push API shows it."""

    external_id: str
    booking_id: int
    person_id: int
    person: str  # the personnummer masked, e.g. 19900101-****
    timezone: str
    status: str  # booked, tentative or cancelled
    start_utc: datetime
    end_utc: datetime
    title: str
    location: str
    description: str
    practitioner_name: str | None
    mode: str
    interpreter_language: str | None
    transport_needed: bool
    cancellation_terms: str | None
    no_show_fee: str | None
    sequence: int
    first_seen_utc: datetime
    last_seen_utc: datetime


@dataclass(frozen=True)
class PushOutcome:
    """``result`` is created, updated, cancelled or unchanged; ``changed`` names fields."""

    result: str
    changed: tuple[str, ...]
    booking: PushedBooking


def require_pusher(actor: Actor) -> int:
    """The unit of an API token that may push; anyone else is refused (``access.denied``)."""
    if actor.provider_id is None or actor.scopes is None or SCOPE not in actor.scopes:
        raise DomainError(
            "access.denied", f"only a unit's API token with the scope {SCOPE} may push bookings"
        )
    return actor.provider_id


def check_external_id(external_id: str) -> None:
    """Refuse a booking id outside 1-200 characters of A-Z a-z 0-9 . _ ~ : @ + = -."""
    if not EXTERNAL_ID.fullmatch(external_id):
        raise DomainError(
            "push.external_id",
            "the booking id is 1 to 200 characters of A-Z, a-z, 0-9 and . _ ~ : @ + = -",
        )


# --- use cases ------------------------------------------------------------------------------


def push_booking(
    session: Session, actor: Actor, external_id: str, draft: PushDraft, *, now: datetime
) -> PushOutcome:
    """Create or update the unit's booking with the provider's id; one transaction."""
    try:
        outcome = _push(session, actor, external_id, draft, now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return outcome


def cancel_pushed(
    session: Session, actor: Actor, external_id: str, *, now: datetime
) -> PushOutcome:
    """Cancel the unit's booking with the provider's id: kept, with status cancelled."""
    try:
        outcome = _cancel(session, actor, external_id, now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return outcome


def read_pushed(
    session: Session, actor: Actor, external_id: str, *, now: datetime
) -> PushedBooking:
    """What is stored for the unit's booking id, for the provider to reconcile (audited)."""
    provider_id = require_pusher(actor)
    check_external_id(external_id)
    source = _push_source(session, provider_id, lock=False)
    row = _pushed_row(session, source, external_id)
    person = session.get(Person, row.person_id)
    assert person is not None
    audit(
        session,
        actor,
        person.id,
        "booking.read",
        now=now,
        detail=f"pushed booking {external_id}",
    )
    view = _view(row, person)
    session.commit()
    return view


def _push(
    session: Session, actor: Actor, external_id: str, draft: PushDraft, now: datetime
) -> PushOutcome:
    provider_id = require_pusher(actor)
    check_external_id(external_id)
    pnr = personnummer.parse(draft.personnummer, today=now.date())
    _check_times(draft, now)
    person_id = session.scalars(
        select(Person.id).where(Person.personnummer == pnr, Person.deleted_utc.is_(None))
    ).first()
    if person_id is None:
        raise DomainError("person.not_found", "no person with that personnummer is registered")
    provider = session.get(Provider, provider_id)
    assert provider is not None
    # The unit's source first, then the person: every push takes them in this order.
    source = _push_source(session, provider_id, lock=True, now=now, created_by=actor.label)
    person = begin_person_write(session, person_id)
    if person is None or person.deleted_utc is not None:
        raise DomainError("person.not_found", "no person with that personnummer is registered")
    owner = session.scalars(
        select(Booking.person_id).where(Booking.source_id == source.id, Booking.uid == external_id)
    ).first()
    if owner is not None and owner != person.id:
        raise PushConflict(
            "push.other_person", "this booking id is already used for another person"
        )
    stored = load_stored(session, person.id, source.id)
    current = _current(stored, external_id)
    if draft.sequence is not None and current is not None and draft.sequence < current.row.sequence:
        raise PushConflict(
            "push.sequence_old",
            f"the stored booking has sequence {current.row.sequence}; this one is older",
        )
    sequence = draft.sequence
    if sequence is None:
        sequence = current.row.sequence if current is not None else 0
    incoming = IncomingBooking.single(
        external_id,
        draft.start_utc,
        draft.end_utc,
        status=draft.status,
        sequence=sequence,
        title=draft.title,
        location=draft.location,
        description=draft.description,
        practitioner_name=draft.practitioner_name,
        mode=draft.mode,
        interpreter=draft.interpreter_language is not None,
        interpreter_language=draft.interpreter_language,
        transport_needed=draft.transport_needed,
        cancellation_terms=draft.cancellation_terms,
        no_show_fee=draft.no_show_fee,
    )
    changed = _changes(current.row, incoming) if current is not None else ()
    if current is not None and not changed:
        view = _view(current.row, person)
        session.rollback()  # nothing to write: not even that it was seen again
        return PushOutcome("unchanged", (), view)
    _apply(session, person.id, provider.id, source, stored, incoming, now)
    if current is None:
        # A new visit at the unit, as when its caregiver books one here; an update or a
        # cancellation never re-opens a care relationship the person ended.
        ensure_care_relationship(session, person.id, provider, created_by="source", now=now)
    result = "created" if current is None else "updated"
    return PushOutcome(result, changed, _view(_pushed_row(session, source, external_id), person))


def _cancel(session: Session, actor: Actor, external_id: str, now: datetime) -> PushOutcome:
    provider_id = require_pusher(actor)
    check_external_id(external_id)
    source = _push_source(session, provider_id, lock=True)
    person_id = _pushed_row(session, source, external_id).person_id
    person = begin_person_write(session, person_id)
    # Read again under the person's lock: the person's data may have been erased meanwhile.
    row = _pushed_row(session, source, external_id)
    assert person is not None and row.person_id == person.id
    if row.status == BookingStatus.CANCELLED:
        view = _view(row, person)
        session.rollback()
        return PushOutcome("unchanged", (), view)
    stored = load_stored(session, person.id, source.id)
    incoming = dataclasses.replace(_as_received(row), status=BookingStatus.CANCELLED.value)
    _apply(session, person.id, provider_id, source, stored, incoming, now)
    return PushOutcome(
        "cancelled", ("status",), _view(_pushed_row(session, source, external_id), person)
    )


def _apply(
    session: Session,
    person_id: int,
    provider_id: int,
    source: Source,
    stored: dict[int, Stored],
    incoming: IncomingBooking,
    now: datetime,
) -> None:
    """Write one booking as an incomplete read: nothing else of the source is cancelled."""
    read = ReadResult(bookings=(incoming,), complete=False)
    plan = plan_read([s.view for s in stored.values()], read, now=now)
    apply_plan(
        session,
        person_id=person_id,
        provider_id=provider_id,
        source_id=source.id,
        stored=stored,
        plan=plan,
        read=read,
        now=now,
        record_unchanged=False,
    )
    source.last_read_at = now
    session.flush()


def _push_source(
    session: Session,
    provider_id: int,
    *,
    lock: bool,
    now: datetime | None = None,
    created_by: str = "",
) -> Source:
    """The unit's push source, locked for this transaction if ``lock``; made on the first
    push (``now`` given), else a missing one means an unknown booking id."""
    query = select(Source).where(
        Source.provider_id == provider_id,
        Source.name == SOURCE_NAME,
        Source.person_id.is_(None),
    )
    if lock:
        query = query.with_for_update()
    source = session.scalars(query).first()
    if source is None and now is not None:
        try:
            with session.begin_nested():
                session.add(
                    Source(
                        provider_id=provider_id,
                        name=SOURCE_NAME,
                        adapter=ADAPTER,
                        created_utc=now,
                        created_by=created_by[:200],
                    )
                )
        except IntegrityError:
            pass  # another first push of the unit made it at the same moment
        source = session.scalars(query).first()
    if source is None:
        raise DomainError("booking.not_found", "the unit has pushed no booking with this id")
    if source.adapter != ADAPTER:
        raise DomainError(
            "push.source_taken", f"the unit already has another source named {SOURCE_NAME!r}"
        )
    return source


def _pushed_row(session: Session, source: Source, external_id: str) -> Booking:
    row = session.scalars(
        select(Booking)
        .where(
            Booking.source_id == source.id,
            Booking.uid == external_id,
            Booking.recurrence_key == "",
        )
        .order_by(Booking.id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise DomainError("booking.not_found", "the unit has pushed no booking with this id")
    return row


def _check_times(draft: PushDraft, now: datetime) -> None:
    if draft.end_utc <= draft.start_utc:
        raise DomainError("push.time_order", "'end' must be after 'start'")
    if draft.end_utc - draft.start_utc > MAX_DURATION:
        raise DomainError("push.time_order", "a booking lasts at most 14 days")
    if not now - EARLIEST <= draft.start_utc <= now + LATEST:
        raise DomainError(
            "push.time_range", "'start' must lie within a year back and two years ahead"
        )


def _current(stored: dict[int, Stored], external_id: str) -> Stored | None:
    for item in stored.values():
        if item.view.identity == (external_id, ""):
            return item
    return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _changes(row: Booking, incoming: IncomingBooking) -> tuple[str, ...]:
    """The fields, by the provider's names, in which ``incoming`` differs from ``row``."""
    return tuple(
        name
        for name in CHANGES
        if _plain(getattr(row, _COLUMN.get(name, name)))
        != getattr(incoming, _COLUMN.get(name, name))
    )


def _as_received(row: Booking) -> IncomingBooking:
    """A stored booking as it was received, so that cancelling it changes only its status."""
    return IncomingBooking(
        **{f.name: _plain(getattr(row, f.name)) for f in dataclasses.fields(IncomingBooking)}
    )


def _view(row: Booking, person: Person) -> PushedBooking:
    return PushedBooking(
        external_id=row.uid,
        booking_id=row.id,
        person_id=person.id,
        person=personnummer.masked(person.personnummer),
        timezone=person.timezone,
        status=STATUS_WORD[_plain(row.status)],
        start_utc=row.start_utc,
        end_utc=row.end_utc,
        title=row.title,
        location=row.location,
        description=row.description,
        practitioner_name=row.practitioner_name,
        mode=_plain(row.mode),
        interpreter_language=row.interpreter_language,
        transport_needed=row.transport_needed,
        cancellation_terms=row.cancellation_terms,
        no_show_fee=row.no_show_fee,
        sequence=row.sequence,
        first_seen_utc=row.first_seen_utc,
        last_seen_utc=row.last_seen_utc,
    )
