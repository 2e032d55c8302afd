"""The merged calendar of one person: query, expansion, redaction by viewer."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, or_, select, type_coerce
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.domain.intervals import overlaps
from calendar_app.domain.merge import Occurrence, mark_overlaps, merge_sources
from calendar_app.domain.recurrence import (
    MAX_STEPS_PER_VIEW,
    Budget,
    expand,
    is_recurrence_key,
    key_to_iso,
)
from calendar_app.domain.visibility import VisitFacts, shown_calendar, shown_facts
from calendar_app.models import Booking, Person, Provider, Role, Source
from calendar_app.services.access import BUSY_LOOKUP, AccessDenied, Actor, authorize
from calendar_app.services.source_health import SourceWarning, source_warnings


@dataclass(frozen=True)
class CalendarView:
    person_id: int
    person_name: str
    timezone: str
    protected_identity: bool
    first_day: date
    end_day: date  # exclusive
    occurrences: list[Occurrence]
    # Sources whose bookings may be out of date ("could not be fetched since 10.42").
    source_warnings: list[SourceWarning] = field(default_factory=list)


def check_range(first_day: date, end_day: date, max_days: int) -> None:
    """Refuse an empty, reversed or too long date range with a clear code."""
    if end_day <= first_day:
        raise DomainError("range.invalid", "the end date must come after the start date")
    if (end_day - first_day).days > max_days:
        raise DomainError(
            "range.too_long", f"a calendar query may cover at most {max_days} days at a time"
        )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


_COLUMNS = (
    Booking.id,
    Booking.uid,
    Booking.recurrence_key,
    Booking.source_id,
    Booking.start_utc,
    Booking.end_utc,
    Booking.all_day,
    Booking.start_date,
    Booking.end_date,
    Booking.recurrence_ics,
    Booking.title,
    Booking.location,
    type_coerce(Booking.status, String),
    Booking.cancelled_from_utc,
    Booking.transparent,
    type_coerce(Booking.mode, String),
    Booking.practitioner_name,
    Booking.practitioner_photo,
    Booking.interpreter,
    Booking.interpreter_language,
    Booking.transport_needed,
    type_coerce(Booking.origin, String),
    Booking.provider_id,
    Provider.name.label("provider_name"),
    type_coerce(Provider.kind, String).label("provider_kind"),
    Source.name.label("source_name"),
)
(
    _ID,
    _UID,
    _KEY,
    _SOURCE_ID,
    _START,
    _END,
    _ALL_DAY,
    _START_DATE,
    _END_DATE,
    _ICS,
    _TITLE,
    _LOCATION,
    _STATUS,
    _CANCELLED_FROM,
    _TRANSPARENT,
    _MODE,
    _PRACTITIONER,
    _PHOTO,
    _INTERPRETER,
    _LANGUAGE,
    _TRANSPORT,
    _ORIGIN,
    _PROVIDER_ID,
    _PROVIDER_NAME,
    _PROVIDER_KIND,
    _SOURCE_NAME,
) = range(len(_COLUMNS))


class _Cache:
    """A small LRU of merged calendars keyed by the person's calendar version.

    The version is bumped in the same transaction as every write to the person's bookings,
    so a cached result is never served for data that has changed since; each web worker
    keeps its own.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple[Any, ...], list[Occurrence]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> list[Occurrence] | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: list[Occurrence]) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


CACHE = _Cache(256)


def merged_calendar(
    session: Session,
    person_id: int,
    first_day: date,
    end_day: date,
    *,
    zone: ZoneInfo,
    max_days: int,
) -> list[Occurrence]:
    """Every occurrence overlapping [first_day, end_day) in the person's zone, sorted."""
    check_range(first_day, end_day, max_days)
    stamp = session.execute(
        select(Person.calendar_version, Person.created_at).where(Person.id == person_id)
    ).first()
    key = (
        session.connection().engine.url.render_as_string(),
        person_id,
        *(stamp or ()),
        first_day,
        end_day,
        zone.key,
    )
    cached = CACHE.get(key)
    if cached is not None:
        return list(cached)  # callers never change the occurrences themselves
    result = _compute(session, person_id, first_day, end_day, zone)
    CACHE.put(key, result)
    return list(result)


def _compute(
    session: Session, person_id: int, first_day: date, end_day: date, zone: ZoneInfo
) -> list[Occurrence]:
    window_start, window_end = local_midnight(first_day, zone), local_midnight(end_day, zone)
    # Core rows, enums as plain strings: this runs for every booking in the window.
    rows: Sequence[Any] = (
        session.connection()
        .execute(
            select(*_COLUMNS)
            .join(Provider, Provider.id == Booking.provider_id)
            .join(Source, Source.id == Booking.source_id)
            .where(
                Booking.person_id == person_id,
                Booking.range_start_utc < window_end,
                or_(Booking.range_end_utc.is_(None), Booking.range_end_utc >= window_start),
            )
        )
        .all()
    )
    found: list[Occurrence] = []
    series: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row[_ICS] is None:
            if overlaps(row[_START], row[_END], window_start, window_end):
                found.append(
                    _occurrence(row, "", row[_START], row[_END], row[_START_DATE], row[_END_DATE])
                )
        else:
            series[(row[_SOURCE_ID], row[_UID])].append(row)
    budget = Budget(MAX_STEPS_PER_VIEW)  # one expansion budget for the whole view
    for parts in series.values():
        found.extend(_expand_series(parts, window_start, window_end, zone, budget))
    return mark_overlaps(merge_sources(found))  # sorted by merge_sources


def _expand_series(
    parts: list[Any], window_start: datetime, window_end: datetime, zone: ZoneInfo, budget: Budget
) -> list[Occurrence]:
    master = next((p for p in parts if p[_KEY] == ""), None)
    overrides = {p[_KEY]: p for p in parts if p[_KEY]}
    result = []
    # Ask the library for a day more on each side: all-day dates are judged in our zone below.
    times = expand(
        [p[_ICS] for p in parts],
        window_start - timedelta(days=1),
        window_end + timedelta(days=1),
        budget,
    )
    for key, start, end in times:
        row = overrides.get(key) or master or next(iter(overrides.values()))
        if isinstance(start, datetime):
            start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)  # type: ignore[union-attr]
            start_date = end_date = None
        else:
            start_utc, end_utc = local_midnight(start, zone), local_midnight(end, zone)
            start_date, end_date = start, end
        if not overlaps(start_utc, end_utc, window_start, window_end):
            continue
        result.append(_occurrence(row, key, start_utc, end_utc, start_date, end_date))
    return result


def _occurrence(
    row: Any,
    key: str,
    start: datetime,
    end: datetime,
    start_date: date | None,
    end_date: date | None,
) -> Occurrence:
    # Positional access: this runs once per occurrence, thousands of times per request.
    status = row[_STATUS]
    cancelled_from = row[_CANCELLED_FROM]
    if cancelled_from is not None and start >= cancelled_from:
        status = "cancelled"
    return Occurrence(
        booking_id=row[_ID],
        uid=row[_UID],
        recurrence_key=key,
        start=start,
        end=end,
        all_day=row[_ALL_DAY],
        start_date=start_date,
        end_date=end_date,
        title=row[_TITLE],
        location=row[_LOCATION],
        provider_id=row[_PROVIDER_ID],
        provider=row[_PROVIDER_NAME],
        provider_kind=row[_PROVIDER_KIND],
        source=row[_SOURCE_NAME],
        status=status,
        transparent=row[_TRANSPARENT],
        mode=row[_MODE],
        practitioner_name=row[_PRACTITIONER],
        practitioner_photo=row[_PHOTO],
        interpreter=row[_INTERPRETER],
        interpreter_language=row[_LANGUAGE],
        transport_needed=row[_TRANSPORT],
        origin=row[_ORIGIN],
    )


def read_calendar(
    session: Session,
    actor: Actor,
    person_id: int,
    first_day: date,
    end_day: date,
    *,
    now: datetime,
    max_days: int,
) -> CalendarView:
    """The person's merged calendar as ``actor`` may see it; audits and commits the read."""
    check_range(first_day, end_day, max_days)
    access = authorize(
        session,
        actor,
        person_id,
        "calendar.read",
        now=now,
        detail=f"{first_day.isoformat()}..{end_day.isoformat()}",
    )
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    zone = ZoneInfo(person.timezone)
    occurrences = merged_calendar(
        session, person_id, first_day, end_day, zone=zone, max_days=max_days
    )
    warnings = [
        warning.seen_with(access.sight_for(warning.provider_id, warning.provider_kind))
        for warning in source_warnings(session, person_id, include_personal=access.sees_personal)
    ]
    session.commit()
    return CalendarView(
        person_id=person.id,
        person_name=person.name,
        timezone=person.timezone,
        protected_identity=person.protected_identity,
        first_day=first_day,
        end_day=end_day,
        occurrences=shown_calendar(occurrences, access.sight_for),
        source_warnings=warnings,
    )


def occurrence_json(occ: Occurrence, zone: ZoneInfo) -> dict[str, Any]:
    """The API/CLI shape of one occurrence (local times with offset, all-day as dates)."""
    if occ.all_day and occ.start_date is not None and occ.end_date is not None:
        start, end = occ.start_date.isoformat(), occ.end_date.isoformat()
    else:
        start = occ.start.astimezone(zone).isoformat()
        end = occ.end.astimezone(zone).isoformat()
    return {
        "uid": occ.uid,
        "recurrence_id": key_to_iso(occ.recurrence_key),
        "start": start,
        "end": end,
        "all_day": occ.all_day,
        "title": occ.title,
        "location": occ.location,
        "provider": occ.provider,
        "provider_kind": occ.provider_kind,
        "status": occ.status,
        "source": occ.source,
        "overlaps": list(occ.overlaps),
        "also_from": [
            {"provider": p.provider, "provider_kind": p.provider_kind, "source": p.source}
            for p in occ.also_from
        ],
        "likely_duplicate_of": list(occ.likely_duplicate_of),
        "booking_id": occ.booking_id,
        "details_hidden": occ.detail_hidden,
    }


def occurrence_text(occ: Occurrence, zone: ZoneInfo) -> str:
    """One human-readable line per occurrence, for the CLI."""
    if occ.all_day and occ.start_date is not None:
        when = f"{occ.start_date.isoformat()} (all day)"
    else:
        start, end = occ.start.astimezone(zone), occ.end.astimezone(zone)
        when = f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"
    flags = []
    if occ.status != "confirmed":
        flags.append(occ.status.upper())
    if occ.overlaps:
        flags.append("OVERLAP")
    suffix = f" [{', '.join(flags)}]" if flags else ""
    place = f" @ {occ.location}" if occ.location else ""
    return f"{when}  {occ.title}{place} ({occ.provider}){suffix}"


@dataclass(frozen=True)
class BookingDetail:
    """One visit as the viewer may see it (``visit`` has been through the viewer's sight),
    at the occurrence asked for."""

    visit: VisitFacts
    person_id: int
    occurrence_key: str
    timezone: str


def visit_facts(booking: Booking, start: datetime, end: datetime, status: str) -> VisitFacts:
    """Everything about one stored visit that any surface may show, before the viewer's
    sight is applied (see calendar_app.domain.visibility.shown_facts)."""
    provider = booking.provider
    return VisitFacts(
        booking_id=booking.id,
        uid=booking.uid,
        start=start,
        end=end,
        all_day=booking.all_day,
        status=status,
        title=booking.title,
        location=booking.location,
        mode=booking.mode.value,
        unit=provider.name,
        unit_kind=provider.kind.value,
        unit_phone=provider.phone or "",
        unit_contact=provider.contact_name or "",
        unit_address=provider.address or "",
        origin=booking.origin.value,
        source=booking.source.name,
        description=booking.description or "",
        practitioner_name=booking.practitioner_name or "",
        practitioner_photo=booking.practitioner_photo or "",
        interpreter=booking.interpreter,
        interpreter_language=booking.interpreter_language or "",
        transport_needed=booking.transport_needed,
        cancellation_terms=booking.cancellation_terms or "",
        no_show_fee=booking.no_show_fee or "",
        care_type=booking.care_type or "",
        time_type=booking.time_type or "",
        cancel_allowed=booking.cancel_allowed,
        rebook_allowed=booking.rebook_allowed,
        message_allowed=booking.message_allowed,
        last_seen_utc=booking.last_seen_utc,
    )


def read_booking(
    session: Session, actor: Actor, booking_id: int, occurrence_key: str, *, now: datetime
) -> BookingDetail:
    """The visit page's data as ``actor`` may see it; audits and commits the read like the
    calendar does. A booking the actor may not see is "not found", as a missing one is."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise DomainError("booking.not_found", "no such booking")
    access = authorize(
        session, actor, booking.person_id, "booking.read", now=now, detail=f"booking {booking.id}"
    )
    person = session.get(Person, booking.person_id)
    assert person is not None
    start, end, status = booking.start_utc, booking.end_utc, booking.status.value
    if occurrence_key and booking.recurrence_ics is not None:
        start, end, status = _find_occurrence(session, booking, occurrence_key, person.timezone)
    sight = access.sight_for(booking.provider_id, booking.provider.kind.value)
    facts = shown_facts(visit_facts(booking, start, end, status), sight)
    session.commit()
    if facts.busy_only and status == "cancelled":
        # A cancelled visit takes no time: a busy-only viewer has nothing to see here.
        raise DomainError("booking.not_found", "no such booking")
    return BookingDetail(
        visit=facts,
        person_id=booking.person_id,
        occurrence_key=occurrence_key,
        timezone=person.timezone,
    )


def _find_occurrence(
    session: Session, booking: Booking, key: str, timezone: str
) -> tuple[datetime, datetime, str]:
    zone = ZoneInfo(timezone)
    if not is_recurrence_key(key):
        raise DomainError("booking.not_found", "the booking has no such occurrence")
    try:
        day = date(int(key[0:4]), int(key[4:6]), int(key[6:8]))
        first, end = day - timedelta(days=2), day + timedelta(days=3)
    except (ValueError, OverflowError):
        raise DomainError("booking.not_found", "the booking has no such occurrence") from None
    for occ in merged_calendar(session, booking.person_id, first, end, zone=zone, max_days=10):
        if occ.uid == booking.uid and occ.recurrence_key == key:
            return occ.start, occ.end, occ.status
    raise DomainError("booking.not_found", "the booking has no such occurrence")


BUSY_LOOKUP_MAX_DAYS = 31


def busy_lookup(
    session: Session,
    actor: Actor,
    person_id: int,
    first_day: date,
    end_day: date,
    *,
    now: datetime,
) -> list[tuple[datetime, datetime]]:
    """Only when the person is busy, for a caregiver booking a first visit; audited.

    Overlapping times are joined, so nothing but the busy periods can be read from it.
    """
    check_range(first_day, end_day, BUSY_LOOKUP_MAX_DAYS)
    if actor.role != Role.CAREGIVER:
        raise AccessDenied()
    authorize(
        session,
        actor,
        person_id,
        BUSY_LOOKUP,
        now=now,
        detail=f"{first_day.isoformat()}..{end_day.isoformat()}",
    )
    person = session.get(Person, person_id)
    assert person is not None
    occurrences = merged_calendar(
        session,
        person_id,
        first_day,
        end_day,
        zone=ZoneInfo(person.timezone),
        max_days=BUSY_LOOKUP_MAX_DAYS,
    )
    session.commit()
    busy: list[tuple[datetime, datetime]] = []
    for occ in sorted(occurrences, key=lambda o: (o.start, o.end)):
        if occ.status == "cancelled" or occ.transparent:
            continue
        if busy and occ.start <= busy[-1][1]:
            busy[-1] = (busy[-1][0], max(busy[-1][1], occ.end))
        else:
            busy.append((occ.start, occ.end))
    return busy
