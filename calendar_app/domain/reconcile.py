"""Merging one read of a source into what is stored (DESIGN §4 "Identity and merge").

Pure planning: given the stored bookings of one person in one source and what a read
delivered, decide what to add, update and cancel. Applying the plan is the service's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from calendar_app.domain.bookings import IncomingBooking, ReadResult

# Stored hash of a booking cancelled because a complete read no longer had it, so that
# its reappearance is seen as a change.
ABSENT = "absent"


# Fields added after bookings were first stored count only when set, so that adding one
# does not make every stored booking look changed.
_LATER_FIELDS = ("time_type", "care_type", "cancel_allowed", "rebook_allowed", "message_allowed")
_FIELDS = tuple(f.name for f in dataclasses.fields(IncomingBooking) if f.name not in _LATER_FIELDS)


def content_hash(booking: IncomingBooking) -> str:
    """A fingerprint of everything a booking says; equal hashes mean nothing changed."""
    values = tuple(getattr(booking, name) for name in _FIELDS)
    later = tuple(
        (name, value) for name in _LATER_FIELDS if (value := getattr(booking, name)) is not None
    )
    return hashlib.sha256(repr(values + later if later else values).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredBooking:
    id: int
    uid: str
    recurrence_key: str
    content_hash: str
    sequence: int
    cancelled: bool
    start_utc: datetime
    range_start_utc: datetime
    range_end_utc: datetime | None
    is_series: bool

    @property
    def identity(self) -> tuple[str, str]:
        return (self.uid, self.recurrence_key)


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel booking ``id``; with ``from_utc`` only its occurrences from then on."""

    id: int
    from_utc: datetime | None = None


@dataclass
class Plan:
    add: list[IncomingBooking] = field(default_factory=list)
    update: list[tuple[int, IncomingBooking]] = field(default_factory=list)
    cancel: list[Cancel] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)  # stored ids the read still contains
    added: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0


def plan_read(stored: Sequence[StoredBooking], read: ReadResult, *, now: datetime) -> Plan:
    """Decide how a read changes the stored bookings of one person in one source."""
    by_identity = {s.identity: s for s in stored}
    plan = Plan()
    if read.cancel_only:
        _plan_cancel_message(plan, stored, read, now)
        return plan
    for incoming in read.bookings:
        current = by_identity.get(incoming.identity)
        if current is None:
            plan.add.append(incoming)
            plan.added += 1
            continue
        plan.seen.append(current.id)
        if incoming.sequence < current.sequence or content_hash(incoming) == current.content_hash:
            plan.unchanged += 1  # the same, or an older revision than the one we have
            continue
        plan.update.append((current.id, incoming))
        if incoming.status == "cancelled" and not current.cancelled:
            plan.cancelled += 1
        else:
            plan.updated += 1
    if read.complete:
        _plan_absent(plan, stored, read, now)
    return plan


def still_to_come(booking: StoredBooking, now: datetime) -> bool:
    """Whether a read could still cancel (part of) the booking: not cancelled, not past."""
    return _cancel_for(booking, now) is not None


def _cancel_for(booking: StoredBooking, now: datetime) -> Cancel | None:
    """How to cancel a booking without rewriting the past; None if it is all in the past."""
    if booking.cancelled:
        return None
    if not booking.is_series:
        return Cancel(booking.id) if booking.start_utc > now else None
    if booking.range_start_utc > now:
        return Cancel(booking.id)
    if booking.range_end_utc is None or booking.range_end_utc > now:
        return Cancel(booking.id, from_utc=now)
    return None


def _plan_absent(
    plan: Plan, stored: Sequence[StoredBooking], read: ReadResult, now: datetime
) -> None:
    present = {b.identity for b in read.bookings}
    # A damaged event was skipped, not removed: its stored booking stays untouched.
    protected = {s.uid for s in read.skipped if s.uid}
    for booking in stored:
        if booking.identity in present or booking.uid in protected:
            continue
        cancel = _cancel_for(booking, now)
        if cancel is not None:
            plan.cancel.append(cancel)
            plan.cancelled += 1


def _plan_cancel_message(
    plan: Plan, stored: Sequence[StoredBooking], read: ReadResult, now: datetime
) -> None:
    """METHOD:CANCEL: a UID alone cancels the series and its overrides; else one instance."""
    targets: set[int] = set()
    stored_uids = {b.uid for b in stored}
    by_identity = {b.identity: b for b in stored}
    for incoming in read.bookings:
        for booking in stored:
            if booking.uid == incoming.uid and (
                incoming.recurrence_key in ("", booking.recurrence_key)
            ):
                targets.add(booking.id)
        if (
            incoming.recurrence_key
            and incoming.identity not in by_identity
            and incoming.uid in stored_uids
        ):
            # One instance of a stored series: kept as a cancelled override.
            plan.add.append(dataclasses.replace(incoming, status="cancelled"))
            plan.cancelled += 1
    for booking in stored:
        if booking.id in targets:
            cancel = _cancel_for(booking, now)
            if cancel is not None:
                plan.cancel.append(cancel)
                plan.cancelled += 1
            else:
                plan.unchanged += 1
