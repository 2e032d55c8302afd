"""What a calendar feed shows: the person's merged calendar at the feed's level, with our
own UIDs, SEQUENCE and change times, cancelled visits for 30 days and alarms from the
reminder rules; and one visit as a file ("Lägg till i kalender"). Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain import feed as feed_format
from calendar_app.domain.errors import DomainError
from calendar_app.domain.merge import Occurrence
from calendar_app.domain.reminders import QuietHours, Visit, alarm_offsets
from calendar_app.models import (
    Booking,
    Feed,
    HelperGrant,
    Person,
    Provider,
    ReminderSettings,
    UnitConsent,
    ViewLevel,
)
from calendar_app.services.access import PERSONAL_KIND, Actor
from calendar_app.services.calendar import merged_calendar, read_booking
from calendar_app.services.reminders import person_rules

DEFAULT_LABEL = "Personkalendern"
# What a feed covers: a year back (the phone keeps some history) and two years ahead.
PAST_DAYS = 365
FUTURE_DAYS = 731
# A cancelled visit stays in the feed, as STATUS:CANCELLED, this long after it was cancelled,
# so that every subscribed phone learns of it before it disappears.
CANCELLED_KEPT = timedelta(days=30)
# Bumped when the rendering itself changes, so that no render of an older kind is served.
FORMAT = 1


def grant_level(session: Session, grant_id: int, timezone: str, now: datetime) -> ViewLevel | None:
    """What a helper's grant lets their feed show today; None once it ended."""
    grant = session.get(HelperGrant, grant_id)
    if grant is None or grant.withdrawn_utc is not None or grant.helper_user_id is None:
        return None
    today = now.astimezone(ZoneInfo(timezone)).date()
    if grant.valid_until is not None and grant.valid_until < today:
        return None
    return grant.view_level


def render_key(version: int, today: date, level: ViewLevel, alarms: bool, locale: str) -> str:
    return f"{FORMAT}:{version}:{today.isoformat()}:{level.value}:{int(alarms)}:{locale}"


def render_feed(session: Session, feed_id: int, *, now: datetime) -> bytes:
    """A feed rendered afresh, stored nowhere (for the benchmark and the tests)."""
    return render(session, feed_id, now)[1]


def render(session: Session, feed_id: int, now: datetime) -> tuple[str, bytes]:
    """The render key and bytes of a feed as of now; reads only."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise DomainError("feed.not_found", "no such feed")
    # The person first, with the version: bookings read after it can only be as new or
    # newer, never older than the key says.
    person = session.scalars(
        select(Person).where(Person.id == feed.person_id).execution_options(populate_existing=True)
    ).one()
    level = feed.level
    if feed.helper_grant_id is not None:
        level = grant_level(session, feed.helper_grant_id, person.timezone, now)
    if level is None:
        raise DomainError("feed.not_found", "no such feed")
    zone = ZoneInfo(person.timezone)
    today = now.astimezone(zone).date()
    key = render_key(person.calendar_version, today, level, feed.alarms, feed.locale)
    events = _events(
        session,
        person,
        level=level,
        own=feed.helper_grant_id is None,
        alarms=feed.alarms,
        locale=feed.locale,
        today=today,
        now=now,
    )
    body = feed_format.render(
        feed_format.FeedCalendar(name=feed.label, zone=zone, locale=feed.locale), events
    )
    return key, body


@dataclass(frozen=True)
class _Detail:
    """What a feed shows of a booking beyond the merged occurrence."""

    id: int
    source_id: int
    uid: str
    recurrence_key: str
    feed_sequence: int
    changed: datetime
    description: str
    practitioner_name: str | None
    interpreter: bool
    interpreter_language: str | None
    transport_needed: bool
    cancellation_terms: str | None
    no_show_fee: str | None


def _details(session: Session, person_id: int) -> dict[int, _Detail]:
    """Every booking of the person (one query: cheaper than naming the ids wanted)."""
    rows = session.execute(
        select(
            Booking.id,
            Booking.source_id,
            Booking.uid,
            Booking.recurrence_key,
            Booking.feed_sequence,
            Booking.changed_utc,
            Booking.first_seen_utc,
            Booking.description,
            Booking.practitioner_name,
            Booking.interpreter,
            Booking.interpreter_language,
            Booking.transport_needed,
            Booking.cancellation_terms,
            Booking.no_show_fee,
        ).where(Booking.person_id == person_id)
    ).all()
    return {
        r.id: _Detail(
            id=r.id,
            source_id=r.source_id,
            uid=r.uid,
            recurrence_key=r.recurrence_key,
            feed_sequence=r.feed_sequence or 0,
            changed=r.changed_utc or r.first_seen_utc,
            description=r.description or "",
            practitioner_name=r.practitioner_name,
            interpreter=r.interpreter,
            interpreter_language=r.interpreter_language,
            transport_needed=r.transport_needed,
            cancellation_terms=r.cancellation_terms,
            no_show_fee=r.no_show_fee,
        )
        for r in rows
    }


def _events(
    session: Session,
    person: Person,
    *,
    level: ViewLevel,
    own: bool,
    alarms: bool,
    locale: str,
    today: date,
    now: datetime,
) -> list[feed_format.FeedEvent]:
    zone = ZoneInfo(person.timezone)
    occurrences = merged_calendar(
        session,
        person.id,
        today - timedelta(days=PAST_DAYS),
        today + timedelta(days=FUTURE_DAYS),
        zone=zone,
        max_days=PAST_DAYS + FUTURE_DAYS,
    )
    details = _details(session, person.id)
    masters = {(d.source_id, d.uid): d for d in details.values() if d.recurrence_key == ""}
    consents = session.scalars(select(UnitConsent).where(UnitConsent.person_id == person.id)).all()
    sensitive = {c.provider_id for c in consents if c.sensitive}
    no_reminders = {c.provider_id for c in consents if not c.reminders}
    phones = dict(
        session.execute(
            select(Provider.id, Provider.phone).where(
                Provider.id.in_({o.provider_id for o in occurrences})
            )
        ).all()
    )
    rules, quiet = (
        (person_rules(session, person.id), _quiet(session, person.id))
        if alarms
        else (
            [],
            None,
        )
    )
    words = feed_format.texts(locale)
    events = []
    shown: set[str] = set()
    for occ in occurrences:
        detail = details.get(occ.booking_id)
        if detail is None:
            continue
        master = masters.get((detail.source_id, detail.uid)) if detail.recurrence_key else None
        sequence, changed = _versions(detail, master)
        if occ.status == "cancelled" and now - changed > CANCELLED_KEPT:
            continue
        anchor = master or detail
        uid = feed_format.feed_uid(anchor.id, occ.recurrence_key)
        if uid in shown:
            continue  # the same occurrence delivered twice (merged) is one event
        shown.add(uid)
        occ_level = level
        if occ.provider_kind == PERSONAL_KIND and not own:
            occ_level = ViewLevel.BUSY  # the person's own calendars are busy time to others
        summary, location, description = _shown(
            occ,
            detail,
            occ_level,
            words,
            neutral=occ.provider_id in sensitive,
            protected=person.protected_identity,
            phone=phones.get(occ.provider_id),
        )
        if occ.status == "cancelled":
            summary = words["cancelled"].format(title=summary)
        before: tuple[timedelta, ...] = ()
        if (
            alarms
            and occ.status != "cancelled"
            and not occ.transparent
            and occ.provider_kind != PERSONAL_KIND
            and occ.provider_id not in no_reminders
        ):
            visit = Visit(
                key=(occ.booking_id, occ.recurrence_key),
                start=occ.start,
                all_day=occ.all_day,
                start_date=occ.start_date,
                transport_needed=detail.transport_needed,
            )
            before = alarm_offsets(visit, rules, zone=zone, quiet=quiet)
        dated = occ.all_day and occ.start_date is not None and occ.end_date is not None
        events.append(
            feed_format.FeedEvent(
                uid=uid,
                start=None if dated else occ.start,
                end=None if dated else occ.end,
                start_date=occ.start_date if dated else None,
                end_date=occ.end_date if dated else None,
                summary=summary,
                location=location,
                description=description,
                status=occ.status,
                sequence=sequence,
                changed=changed,
                transparent=occ.transparent,
                alarms_before=before,
            )
        )
    return events


def _versions(detail: _Detail, master: _Detail | None) -> tuple[int, datetime]:
    """SEQUENCE and last change of an occurrence. One moved by an override counts one
    change more than its series, so its SEQUENCE goes up when the override appears."""
    if master is None:
        return detail.feed_sequence, detail.changed
    return master.feed_sequence + 1 + detail.feed_sequence, max(detail.changed, master.changed)


def _quiet(session: Session, person_id: int) -> QuietHours | None:
    settings = session.get(ReminderSettings, person_id)
    if settings is not None and settings.quiet_start and settings.quiet_end:
        return QuietHours(settings.quiet_start, settings.quiet_end)
    return None


def _shown(
    occ: Occurrence,
    detail: _Detail,
    level: ViewLevel,
    words: dict[str, str],
    *,
    neutral: bool,
    protected: bool,
    phone: str | None,
) -> tuple[str, str, str]:
    """Summary, location and description at ``level``; a protected person's feeds never
    hold an address."""
    if level == ViewLevel.BUSY:
        return words["busy"], "", ""
    location = "" if protected else occ.location
    if level == ViewLevel.TIME_PLACE:
        unit = words["neutral_unit"] if neutral else occ.provider
        return words["visit"].format(unit=unit), location, ""
    if occ.provider_kind == PERSONAL_KIND:
        return occ.title or occ.provider, location, detail.description
    lines = [detail.description] if detail.description else []
    lines.append(words["unit"].format(unit=occ.provider))
    if detail.practitioner_name:
        lines.append(words["practitioner"].format(name=detail.practitioner_name))
    if occ.mode in ("phone", "video"):
        lines.append(words[occ.mode])
    if detail.interpreter:
        lines.append(
            words["interpreter"].format(language=detail.interpreter_language)
            if detail.interpreter_language
            else words["interpreter_unknown"]
        )
    if detail.transport_needed:
        lines.append(words["transport"])
    if detail.cancellation_terms:
        lines.append(words["cancellation"].format(terms=detail.cancellation_terms))
    if detail.no_show_fee:
        lines.append(words["fee"].format(fee=detail.no_show_fee))
    if phone:
        lines.append(words["call"].format(phone=phone))
    return occ.title or occ.provider, location, "\n".join(lines)


def booking_ics(
    session: Session,
    actor: Actor,
    booking_id: int,
    occurrence_key: str,
    *,
    now: datetime,
    locale: str = "sv",
) -> bytes:
    """One visit as an iCalendar file ("Lägg till i kalender"), at the viewer's level and
    with the same UID as in the person's feeds; the read is audited like the booking page."""
    found = read_booking(session, actor, booking_id, occurrence_key, now=now)
    booking = found.booking
    person = session.get(Person, booking.person_id)
    assert person is not None
    zone = ZoneInfo(person.timezone)
    details = _details(session, person.id)
    session.commit()
    detail = details[booking.id]
    master = None
    if booking.recurrence_key:
        master = next(
            (
                d
                for d in details.values()
                if (d.source_id, d.uid, d.recurrence_key) == (booking.source_id, booking.uid, "")
            ),
            None,
        )
    key = occurrence_key or booking.recurrence_key
    dated = booking.all_day
    occ = Occurrence(
        booking_id=booking.id,
        uid=booking.uid,
        recurrence_key=key,
        start=found.start,
        end=found.end,
        all_day=dated,
        start_date=found.start.astimezone(zone).date() if dated else None,
        end_date=found.end.astimezone(zone).date() if dated else None,
        title=booking.title,
        location=booking.location,
        provider_id=booking.provider_id,
        provider=booking.provider.name,
        provider_kind=booking.provider.kind.value,
        source="",
        status=found.status,
        transparent=booking.transparent,
        mode=booking.mode.value,
    )
    consent = session.scalars(
        select(UnitConsent).where(
            UnitConsent.person_id == person.id, UnitConsent.provider_id == booking.provider_id
        )
    ).first()
    session.commit()
    words = feed_format.texts(locale)
    summary, location, description = _shown(
        occ,
        detail,
        found.level,
        words,
        neutral=consent is not None and consent.sensitive,
        protected=person.protected_identity or not found.show_address,
        phone=booking.provider.phone,
    )
    if found.status == "cancelled":
        summary = words["cancelled"].format(title=summary)
    sequence, changed = _versions(detail, master)
    event = feed_format.FeedEvent(
        uid=feed_format.feed_uid((master or detail).id, key),
        start=None if dated else found.start,
        end=None if dated else found.end,
        start_date=occ.start_date,
        end_date=occ.end_date,
        summary=summary,
        location=location,
        description=description,
        status=found.status,
        sequence=sequence,
        changed=changed,
        transparent=booking.transparent,
    )
    return feed_format.render(
        feed_format.FeedCalendar(name=DEFAULT_LABEL, zone=zone, locale=locale), [event]
    )
