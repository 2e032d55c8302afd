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
from calendar_app.domain.visibility import VisitFacts, shown_facts, shown_occurrence
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
from calendar_app.services.access import PERSONAL_KIND, Actor, feed_access
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
    access = feed_access(session, person, level, own=own)
    consents = session.scalars(select(UnitConsent).where(UnitConsent.person_id == person.id)).all()
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
        sight = access.sight_for(occ.provider_id, occ.provider_kind)
        if shown_occurrence(occ, sight) is None:
            continue  # a cancelled or free visit is not busy time: nothing to show
        shown.add(uid)
        facts = shown_facts(_facts(occ, detail, phones.get(occ.provider_id)), sight)
        summary, location, description = event_text(
            facts, words, personal=occ.provider_kind == PERSONAL_KIND
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


def _facts(occ: Occurrence, detail: _Detail, phone: str | None) -> VisitFacts:
    """What the feed knows of one occurrence, before the viewer's sight is applied."""
    return VisitFacts(
        booking_id=occ.booking_id,
        uid=occ.uid,
        start=occ.start,
        end=occ.end,
        all_day=occ.all_day,
        status=occ.status,
        title=occ.title,
        location=occ.location,
        mode=occ.mode,
        unit=occ.provider,
        unit_kind=occ.provider_kind,
        unit_phone=phone or "",
        unit_contact="",
        unit_address="",
        origin=occ.origin,
        source=occ.source,
        description=detail.description,
        practitioner_name=detail.practitioner_name or "",
        interpreter=detail.interpreter,
        interpreter_language=detail.interpreter_language or "",
        transport_needed=detail.transport_needed,
        cancellation_terms=detail.cancellation_terms or "",
        no_show_fee=detail.no_show_fee or "",
    )


def event_text(facts: VisitFacts, words: dict[str, str], *, personal: bool) -> tuple[str, str, str]:
    """Summary, location and description of one visit in a calendar file, from what the
    viewer may see of it (``facts`` has been through the viewer's sight)."""
    if facts.busy_only:
        return words["busy"], "", ""
    if facts.what_hidden:
        unit = facts.unit or words["neutral_unit"]
        return words["visit"].format(unit=unit), facts.location, ""
    if personal:
        return facts.title or facts.unit, facts.location, facts.description
    unit = facts.unit or words["neutral_unit"]
    lines = [facts.description] if facts.description else []
    lines.append(words["unit"].format(unit=unit))
    if facts.practitioner_name:
        lines.append(words["practitioner"].format(name=facts.practitioner_name))
    if facts.mode in ("phone", "video"):
        lines.append(words[facts.mode])
    if facts.interpreter:
        lines.append(
            words["interpreter"].format(language=facts.interpreter_language)
            if facts.interpreter_language
            else words["interpreter_unknown"]
        )
    if facts.transport_needed:
        lines.append(words["transport"])
    if facts.cancellation_terms:
        lines.append(words["cancellation"].format(terms=facts.cancellation_terms))
    if facts.no_show_fee:
        lines.append(words["fee"].format(fee=facts.no_show_fee))
    if facts.unit_phone:
        lines.append(words["call"].format(phone=facts.unit_phone))
    return facts.title or unit, facts.location, "\n".join(lines)


def booking_ics(
    session: Session,
    actor: Actor,
    booking_id: int,
    occurrence_key: str,
    *,
    now: datetime,
    locale: str = "sv",
) -> bytes:
    """One visit as an iCalendar file ("Lägg till i kalender"), saying exactly what the
    visit page says to this viewer, with the same UID as in the person's feeds; the read is
    audited like the booking page."""
    found = read_booking(session, actor, booking_id, occurrence_key, now=now)
    visit = found.visit
    booking = session.get(Booking, booking_id)
    assert booking is not None
    details = _details(session, found.person_id)
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
    zone = ZoneInfo(found.timezone)
    dated = visit.all_day
    words = feed_format.texts(locale)
    summary, location, description = event_text(
        visit, words, personal=visit.unit_kind == PERSONAL_KIND
    )
    if visit.status == "cancelled":
        summary = words["cancelled"].format(title=summary)
    sequence, changed = _versions(detail, master)
    event = feed_format.FeedEvent(
        uid=feed_format.feed_uid((master or detail).id, key),
        start=None if dated else visit.start,
        end=None if dated else visit.end,
        start_date=visit.start.astimezone(zone).date() if dated else None,
        end_date=visit.end.astimezone(zone).date() if dated else None,
        summary=summary,
        location=location,
        description=description,
        status=visit.status,
        sequence=sequence,
        changed=changed,
        transparent=booking.transparent and not visit.busy_only,
    )
    return feed_format.render(
        feed_format.FeedCalendar(name=DEFAULT_LABEL, zone=zone, locale=locale), [event]
    )
