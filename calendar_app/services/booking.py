"""Booking a visit by a caregiver: the clash check while picking, repeated atomically on save.

A unit books for a person it has a care relationship with, by the person's id. A unit
without one reaches the person only by personnummer (the first visit: the person's busy
time only, and audited); booking that visit starts the care relationship. No numeric id
ever opens a calendar by itself.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.clashes import (
    ClashWarning,
    Preferences,
    Visit,
    WeeklyWindow,
    check,
    local_instant,
)
from calendar_app.domain.consolidation import ReviewVisit, review
from calendar_app.domain.consolidation import WeekReview as ConsolidationWeek
from calendar_app.domain.errors import DomainError
from calendar_app.domain.suggestions import Suggestion, suggest
from calendar_app.domain.visibility import seen_visit
from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    Person,
    PersonPreferences,
    PersonTimeWindow,
    Provider,
    Role,
    TimeWindowKind,
    User,
    VisitMode,
)
from calendar_app.services.access import (
    BUSY_LOOKUP,
    Access,
    AccessDenied,
    Actor,
    authorize,
    has_care_relationship,
)
from calendar_app.services.calendar import merged_calendar
from calendar_app.services.directory import builtin_source, ensure_care_relationship, find_person
from calendar_app.services.locking import begin_person_write, calendar_changed
from calendar_app.services.reminders import replan

MIN_MINUTES, MAX_MINUTES = 5, 600
MAX_DAYS_AHEAD = 400
SUGGEST_MAX_DAYS = 92
DEFAULT_OPENING = (WeeklyWindow(frozenset(range(5)), time(8), time(16)),)


@dataclass(frozen=True)
class VisitDraft:
    """A visit as the caregiver proposes it, in the person's local time."""

    day: date
    start: time
    minutes: int
    title: str = ""
    location: str = ""
    mode: str = "in_person"


@dataclass(frozen=True)
class CheckResult:
    start: datetime
    end: datetime
    warnings: list[ClashWarning]

    @property
    def hard(self) -> list[ClashWarning]:
        return [w for w in self.warnings if w.hard]


def preferences_for(session: Session, person: Person) -> Preferences:
    """The person's stated preferences as the clash rules want them."""
    stored = session.get(PersonPreferences, person.id)
    windows = session.scalars(
        select(PersonTimeWindow).where(PersonTimeWindow.person_id == person.id)
    ).all()

    def weekly(row: PersonTimeWindow) -> WeeklyWindow:
        days = frozenset(int(d) for d in row.weekdays.split(",") if d.strip())
        return WeeklyWindow(days, row.start_time, row.end_time)

    buffer = timedelta(minutes=stored.travel_buffer_minutes if stored else 60)
    return Preferences(
        zone=ZoneInfo(person.timezone),
        suitable=tuple(weekly(w) for w in windows if w.kind == TimeWindowKind.SUITABLE),
        busy=tuple(
            (w.label or "Upptagen", weekly(w)) for w in windows if w.kind == TimeWindowKind.BUSY
        ),
        max_visits_per_day=stored.max_visits_per_day if stored else None,
        travel_buffer=buffer,
        same_town_buffer=min(buffer, timedelta(minutes=20)),
    )


def _validate(draft: VisitDraft, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    if not MIN_MINUTES <= draft.minutes <= MAX_MINUTES:
        raise DomainError(
            "visit.duration", f"a visit lasts from {MIN_MINUTES} to {MAX_MINUTES} minutes"
        )
    if draft.mode not in {m.value for m in VisitMode}:
        raise DomainError("visit.mode", "the mode is in_person, phone or video")
    today = now.astimezone(zone).date()
    if not today - timedelta(days=1) <= draft.day <= today + timedelta(days=MAX_DAYS_AHEAD):
        raise DomainError("visit.date", "book from today up to about 400 days ahead")
    start = local_instant(draft.day, draft.start, zone).astimezone(UTC)
    return start, start + timedelta(minutes=draft.minutes)


def _existing(
    session: Session, person: Person, first_day: date, last_day: date, access: Access
) -> list[Visit]:
    """The person's visits from the day before ``first_day`` to the day after ``last_day``,
    labelled at the viewer's level."""
    zone = ZoneInfo(person.timezone)
    visits = []
    for occ in merged_calendar(
        session,
        person.id,
        first_day - timedelta(days=1),
        last_day + timedelta(days=2),
        zone=zone,
        max_days=SUGGEST_MAX_DAYS + 3,
    ):
        # Only what the viewer may see takes part: a hidden visit is busy from-to at a
        # place the viewer may see, or at none (then no travel time is judged from it).
        seen = seen_visit(occ, access.sight_for(occ.provider_id, occ.provider_kind), "")
        visits.append(
            Visit(
                key=str(occ.booking_id),
                start=occ.start,
                end=occ.end,
                label=seen.label,
                location=seen.location,
                cancelled=not seen.takes_time,
                travels=seen.travels,
            )
        )
    return visits


@dataclass(frozen=True)
class Reach:
    """How a caregiver reaches the person a booking is for."""

    person: Person
    # Found by personnummer for a first visit (no care relationship yet): busy time only.
    by_personnummer: bool = False


def reach_by_id(session: Session, actor: Actor, person_id: int) -> Reach:
    """The person behind ``person_id``, for a unit that cares for them; anyone else is
    refused exactly as for an id that names nobody."""
    person = session.get(Person, person_id)
    if (
        person is None
        or actor.role != Role.CAREGIVER
        or actor.provider_id is None
        or not has_care_relationship(session, person_id, actor.provider_id)
    ):
        raise AccessDenied()
    return Reach(person)


def reach_by_personnummer(session: Session, actor: Actor, pnr_text: str, *, now: datetime) -> Reach:
    """The person with this personnummer, for a unit's first visit (busy time only)."""
    if actor.role != Role.CAREGIVER or actor.provider_id is None:
        raise AccessDenied()
    person = find_person(session, pnr_text, today=now.date())
    return Reach(
        person, by_personnummer=not has_care_relationship(session, person.id, actor.provider_id)
    )


def _access_for_booking(
    session: Session, actor: Actor, reach: Reach, now: datetime, *, audit_detail: str
) -> Access:
    if actor.role != Role.CAREGIVER or actor.provider_id is None:
        raise DomainError("access.denied", "only caregivers book visits")
    person_id = reach.person.id
    if has_care_relationship(session, person_id, actor.provider_id):
        return authorize(session, actor, person_id, "calendar.read", now=now, detail=audit_detail)
    if not reach.by_personnummer:
        raise AccessDenied()
    # A first visit: the person's busy time only, and the lookup is audited.
    return authorize(session, actor, person_id, BUSY_LOOKUP, now=now, detail=audit_detail)


def _check(
    session: Session,
    actor: Actor,
    reach: Reach,
    draft: VisitDraft,
    now: datetime,
    *,
    exclude_key: str | None,
    what: str,
) -> CheckResult:
    """Validate the draft and run every clash rule against the person's visits (audited)."""
    person = reach.person
    zone = ZoneInfo(person.timezone)
    start, end = _validate(draft, zone, now)
    access = _access_for_booking(
        session, actor, reach, now, audit_detail=f"{what} {start.isoformat()}"
    )
    day = start.astimezone(zone).date()
    others = [v for v in _existing(session, person, day, day, access) if v.key != exclude_key]
    warnings = check(start, end, draft.location, others, preferences_for(session, person))
    return CheckResult(start, end, warnings)


def _override(warnings: list[ClashWarning], reason: str | None) -> str | None:
    """Refuse a hard clash (``clash``) unless a reason is given; return the reason to keep."""
    hard = [w for w in warnings if w.hard]
    if not hard:
        return None
    text = (reason or "").strip()
    if not text:
        names = ", ".join(sorted({w.other for w in hard}))
        raise DomainError("clash", f"the time clashes with: {names}")
    return text[:500]


def check_visit(
    session: Session, actor: Actor, reach: Reach, draft: VisitDraft, *, now: datetime
) -> CheckResult:
    """What a proposed visit clashes with, as the caregiver may see it (audited)."""
    what = "first visit: clash check" if reach.by_personnummer else "clash check"
    result = _check(session, actor, reach, draft, now, exclude_key=None, what=what)
    session.commit()
    return result


def book_visit(
    session: Session,
    actor: Actor,
    reach: Reach,
    draft: VisitDraft,
    *,
    now: datetime,
    override_reason: str | None = None,
) -> Booking:
    """Save a native booking at the caregiver's unit; one transaction, person locked.

    The whole check runs again under the lock, so two caregivers booking at once cannot
    both win. A hard clash is refused (``clash``) unless overridden with a reason. A first
    visit (reached by personnummer) starts the unit's care relationship.
    """
    person_id = reach.person.id
    person = begin_person_write(session, person_id)
    if person is None or person.deleted_utc is not None:
        raise DomainError("access.denied", "you may not book for this person")
    what = "first visit: booking" if reach.by_personnummer else "booking"
    reach = Reach(person, reach.by_personnummer)
    result = _check(session, actor, reach, draft, now, exclude_key=None, what=what)
    start, end, warnings = result.start, result.end, result.warnings
    override = _override(warnings, override_reason)
    assert actor.provider_id is not None
    provider = session.get(Provider, actor.provider_id)
    assert provider is not None
    source = builtin_source(session, provider)
    booker = session.get(User, actor.user_id) if actor.user_id else None
    booking = Booking(
        person_id=person_id,
        source_id=source.id,
        provider_id=provider.id,
        uid=f"{uuid.uuid4()}@personkalendern",
        recurrence_key="",
        start_utc=start,
        end_utc=end,
        tzid=person.timezone,
        all_day=False,
        range_start_utc=start,
        range_end_utc=end,
        title=(draft.title.strip() or provider.name)[:500],
        location=draft.location.strip()[:500],
        mode=VisitMode(draft.mode),
        status=BookingStatus.CONFIRMED,
        origin=BookingOrigin.NATIVE,
        sequence=0,
        feed_sequence=0,
        changed_utc=now,
        content_hash="native",
        first_seen_utc=now,
        last_seen_utc=now,
        booked_by_user_id=actor.user_id,
        clash_override_reason=override,
        # The caregiver who books is whom the person meets, unless said otherwise.
        practitioner_name=booker.display_name if booker else None,
        practitioner_photo=booker.photo if booker else None,
    )
    session.add(booking)
    # The unit's own booking system now delivers the person's bookings: a care relationship.
    ensure_care_relationship(session, person_id, provider, created_by="booking", now=now)
    calendar_changed(session, person_id)
    replan(session, person_id, now=now)
    session.commit()
    return booking


def opening_hours(provider: Provider) -> tuple[WeeklyWindow, ...]:
    """The unit's opening hours; weekdays 08-16 when it has set none."""
    if not provider.opening_hours:
        return DEFAULT_OPENING
    return tuple(
        WeeklyWindow(
            frozenset(int(d) for d in item["weekdays"]),
            time.fromisoformat(item["start"]),
            time.fromisoformat(item["end"]),
        )
        for item in json.loads(provider.opening_hours)
    )


def set_opening_hours(
    session: Session, actor: Actor, provider_id: int, windows: list[dict[str, Any]]
) -> None:
    """A unit's caregivers (or an administrator) set its opening hours; checked first."""
    if not (
        actor.role == Role.ADMIN
        or (actor.role == Role.CAREGIVER and actor.provider_id == provider_id)
    ):
        raise DomainError("access.denied", "only the unit's staff set its opening hours")
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise DomainError("provider.not_found", "no such unit")
    try:
        cleaned: list[dict[str, Any]] = [
            {
                "weekdays": sorted({int(d) for d in w["weekdays"]}),
                "start": time.fromisoformat(str(w["start"])).strftime("%H:%M"),
                "end": time.fromisoformat(str(w["end"])).strftime("%H:%M"),
            }
            for w in windows
        ]
    except (KeyError, TypeError, ValueError):
        raise DomainError("opening.format", "give weekdays, start and end (HH:MM)") from None
    for w in cleaned:
        if (
            not w["weekdays"]
            or any(not 0 <= d <= 6 for d in w["weekdays"])
            or (w["end"] <= w["start"])
        ):
            raise DomainError("opening.format", "weekdays 0-6, and end after start")
    provider.opening_hours = json.dumps(cleaned)
    session.commit()


def suggest_times(
    session: Session,
    actor: Actor,
    reach: Reach,
    *,
    minutes: int,
    first_day: date,
    last_day: date,
    location: str,
    now: datetime,
    limit: int = 5,
) -> list[Suggestion]:
    """Free slots at the caregiver's unit, best first, each with its reason (audited)."""
    person = reach.person
    zone = ZoneInfo(person.timezone)
    _validate(VisitDraft(day=first_day, start=time(12), minutes=minutes), zone, now)
    if last_day < first_day:
        raise DomainError("range.invalid", "the last day must not come before the first")
    if (last_day - first_day).days + 1 > SUGGEST_MAX_DAYS:
        raise DomainError("range.too_long", f"suggest within at most {SUGGEST_MAX_DAYS} days")
    access = _access_for_booking(
        session,
        actor,
        reach,
        now,
        audit_detail=f"suggestions {first_day.isoformat()}..{last_day.isoformat()}",
    )
    assert actor.provider_id is not None
    provider = session.get(Provider, actor.provider_id)
    assert provider is not None
    existing = _existing(session, person, first_day, last_day, access)
    result = suggest(
        minutes,
        first_day,
        last_day,
        opening_hours(provider),
        existing,
        preferences_for(session, person),
        location,
        not_before=now,
        limit=limit,
    )
    session.commit()
    return result


def _own_native_booking(session: Session, actor: Actor, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or actor.role != Role.CAREGIVER:
        raise DomainError("access.denied", "you may not change this booking")
    if booking.origin != BookingOrigin.NATIVE:
        raise DomainError(
            "booking.synced",
            "the booking comes from the unit's own system: change it there",
        )
    if booking.provider_id != actor.provider_id:
        raise DomainError("access.denied", "only the unit that booked may change it")
    return booking


def rebook_visit(
    session: Session,
    actor: Actor,
    booking_id: int,
    draft: VisitDraft,
    *,
    now: datetime,
    override_reason: str | None = None,
) -> Booking:
    """Move a native booking; the same atomic clash check as a new one, itself excluded."""
    booking = _own_native_booking(session, actor, booking_id)
    person = begin_person_write(session, booking.person_id)
    assert person is not None
    session.refresh(booking)
    if booking.status == BookingStatus.CANCELLED:
        raise DomainError("booking.cancelled", "a cancelled booking cannot be moved")
    result = _check(
        session,
        actor,
        Reach(person),
        draft,
        now,
        exclude_key=str(booking.id),
        what=f"rebooking {booking.id}",
    )
    start, end, warnings = result.start, result.end, result.warnings
    override = _override(warnings, override_reason)
    if (booking.start_utc, booking.end_utc) != (start, end):
        booking.feed_sequence += 1
    booking.start_utc = booking.range_start_utc = start
    booking.end_utc = booking.range_end_utc = end
    if draft.title.strip():
        booking.title = draft.title.strip()[:500]
    booking.location = draft.location.strip()[:500]
    booking.mode = VisitMode(draft.mode)
    booking.sequence += 1
    booking.last_modified_utc = booking.changed_utc = now
    booking.clash_override_reason = override
    calendar_changed(session, person.id)
    replan(session, person.id, now=now)
    session.commit()
    return booking


def cancel_visit(session: Session, actor: Actor, booking_id: int, *, now: datetime) -> Booking:
    """Cancel a native booking: kept, with status cancelled, never deleted."""
    booking = _own_native_booking(session, actor, booking_id)
    begin_person_write(session, booking.person_id)
    session.refresh(booking)
    if booking.status != BookingStatus.CANCELLED:
        booking.status = BookingStatus.CANCELLED
        booking.sequence += 1
        booking.feed_sequence += 1
        booking.last_modified_utc = booking.changed_utc = now
        calendar_changed(session, booking.person_id)
        replan(session, booking.person_id, now=now)
    session.commit()
    return booking


REVIEW_WEEKS = 4


def consolidation_review(
    session: Session, actor: Actor, person_id: int, *, now: datetime
) -> list[ConsolidationWeek]:
    """The coming four weeks: days that could be merged and the moves that would do it."""
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("access.denied", "you may not see this person's calendar")
    access = authorize(
        session, actor, person_id, "calendar.read", now=now, detail="consolidation review"
    )
    zone = ZoneInfo(person.timezone)
    first = now.astimezone(zone).date()
    last = first + timedelta(weeks=REVIEW_WEEKS, days=6)
    providers = {p.id: p for p in session.scalars(select(Provider))}
    items = []
    for occ in merged_calendar(
        session, person.id, first - timedelta(days=7), last, zone=zone, max_days=60
    ):
        sight = access.sight_for(occ.provider_id, occ.provider_kind)
        seen = seen_visit(occ, sight, str(occ.booking_id) + occ.recurrence_key)
        provider = providers[occ.provider_id]
        items.append(
            ReviewVisit(
                visit=Visit(
                    key=seen.key,
                    start=occ.start,
                    end=occ.end,
                    label=seen.label,
                    location=seen.location,
                    cancelled=not seen.takes_time,
                    travels=seen.travels,
                ),
                provider_id=occ.provider_id,
                provider=seen.unit,
                contact=(provider.phone or "") if seen.unit else "",
                movable_here=occ.origin == "native" and occ.provider_id == actor.provider_id,
                in_person=seen.travels,
                shown=seen.shown_in_full,
            )
        )
    weeks = review(
        items,
        preferences_for(session, person),
        lambda pid: opening_hours(providers[pid]),
        first,
        weeks=REVIEW_WEEKS,
        now=now,
    )
    session.commit()
    return weeks
