"""Calendar feeds: secret URLs a phone subscribes to, each at a level, every fetch audited.

A feed's token is 256 random bits shown once; only its SHA-256 is stored. The rendered
bytes are kept per feed with the key they were made from (the person's calendar version,
the day, the level and the options) and rendered again as soon as a change to the person's
calendar commits, so that the phone's next fetch finds them ready.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, event, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import String

from calendar_app.db import now_utc
from calendar_app.domain import feed as feed_format
from calendar_app.domain.errors import DomainError
from calendar_app.domain.merge import Occurrence
from calendar_app.domain.reminders import QuietHours, Visit, alarm_offsets
from calendar_app.models import (
    AuditEvent,
    Booking,
    Feed,
    FeedRender,
    HelperGrant,
    Person,
    Provider,
    ReminderSettings,
    Role,
    UnitConsent,
    ViewLevel,
)
from calendar_app.services.access import (
    PERSONAL_KIND,
    AccessDenied,
    Actor,
    active_grant,
    audit,
    authorize,
)
from calendar_app.services.calendar import merged_calendar, read_booking
from calendar_app.services.locking import CHANGED_PEOPLE
from calendar_app.services.reminders import person_rules

log = logging.getLogger(__name__)

# The words a feed's level is given by at the command line and in forms.
LEVELS = {
    "full": ViewLevel.FULL,
    "limited": ViewLevel.TIME_PLACE,
    "time_place": ViewLevel.TIME_PLACE,
    "busy": ViewLevel.BUSY,
}
DEFAULT_LABEL = "Personkalendern"
MAX_FEEDS = 10  # live feeds per person
# What a feed covers: a year back (the phone keeps some history) and two years ahead.
PAST_DAYS = 365
FUTURE_DAYS = 731
# A cancelled visit stays in the feed, as STATUS:CANCELLED, this long after it was cancelled,
# so that every subscribed phone learns of it before it disappears.
CANCELLED_KEPT = timedelta(days=30)
# Bumped when the rendering itself changes, so that no render of an older kind is served.
FORMAT = 1
# How often a fetch updates the feed's "last fetched" (every fetch is audited anyway).
_FETCH_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewFeed:
    """A feed just made: ``token`` goes into its URL, is shown once and never stored."""

    id: int
    token: str


def feed_path(token: str) -> str:
    """The path of a feed's URL (to be put after the service's public address)."""
    return f"/feed/{token}.ics"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_level(text: str) -> ViewLevel:
    """The level named ``full``, ``limited`` (time and place) or ``busy``."""
    try:
        return LEVELS[text.strip().lower()]
    except KeyError:
        raise DomainError("feed.level", "choose full, limited or busy") from None


def _is_operator(actor: Actor) -> bool:
    return actor.role is None and actor.user_id is None


def _live_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or person.deleted_utc is not None:
        raise AccessDenied()
    return person


def _helper_grant(session: Session, actor: Actor, person: Person, now: datetime) -> HelperGrant:
    """The helper's grant to see the person's calendar, or AccessDenied."""
    grant = active_grant(session, person, actor.user_id, now=now)
    if grant is None or grant.view_level is None:
        raise AccessDenied()
    return grant


def create_feed(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    level: str | None,
    label: str = "",
    alarms: bool = False,
    now: datetime,
    locale: str = "sv",
) -> NewFeed:
    """Make a feed and commit; the returned token is shown once.

    The person (and the operator at the command line) choose the level; a helper's feed
    always shows what their grant allows, so ``level`` is ignored for them.
    """
    person = _live_person(session, person_id)
    grant: HelperGrant | None = None
    chosen: ViewLevel | None
    if actor.role == Role.HELPER:
        grant = _helper_grant(session, actor, person, now)
        chosen = None
    elif (actor.role == Role.PERSON and actor.person_id == person_id) or _is_operator(actor):
        chosen = parse_level(level or "")
    else:
        raise AccessDenied()
    label = " ".join(label.split())
    if len(label) > 100:
        raise DomainError("feed.label", "give the feed a name of at most 100 characters")
    if not label:
        label = DEFAULT_LABEL
        if grant is not None:
            label = f"{DEFAULT_LABEL} ({person.name.split()[0]})" if person.name else label
    live = session.scalars(
        select(Feed.id).where(Feed.person_id == person_id, Feed.revoked_utc.is_(None))
    ).all()
    if len(live) >= MAX_FEEDS:
        raise DomainError("feed.too_many", f"at most {MAX_FEEDS} feeds per person")
    token = secrets.token_urlsafe(32)
    row = Feed(
        person_id=person_id,
        token_hash=_digest(token),
        label=label,
        level=chosen,
        helper_grant_id=grant.id if grant is not None else None,
        alarms=alarms,
        locale=locale if locale in feed_format.TEXTS else "sv",
        created_utc=now,
        created_by=actor.label[:200],
        created_role=actor.role.value if actor.role else "operator",
    )
    session.add(row)
    if actor.person_id != person_id:
        audit(session, actor, person_id, "feed.create", now=now, detail=f"feed {label!r}")
    session.commit()
    return NewFeed(id=row.id, token=token)


@dataclass(frozen=True)
class FeedInfo:
    """A feed as listed on the person's page (never its token)."""

    id: int
    label: str
    level: ViewLevel | None  # None: follows the helper's grant
    helper_name: str | None
    alarms: bool
    created_utc: datetime
    created_by: str
    created_role: str
    last_fetched_utc: datetime | None
    mine: bool  # the viewer's own (a helper's), or the viewer may manage every feed


def list_feeds(
    session: Session, actor: Actor, person_id: int, *, now: datetime, audited: bool = True
) -> list[FeedInfo]:
    """The person's live feeds: all of them for whoever manages the person's settings,
    only their own for a helper who may see the calendar; commits. ``audited=False`` for
    the list shown with a feed just made, whose making is in the audit log already."""
    person = _live_person(session, person_id)
    grant_id = _manager_or_grant(session, actor, person, now)
    query = select(Feed).where(Feed.person_id == person_id, Feed.revoked_utc.is_(None))
    if grant_id is not None:
        query = query.where(Feed.helper_grant_id == grant_id)
    rows = list(session.scalars(query.order_by(Feed.created_utc, Feed.id)))
    names = {
        g.id: g.helper_name
        for g in session.scalars(
            select(HelperGrant).where(HelperGrant.id.in_({r.helper_grant_id for r in rows}))
        )
    }
    if audited and actor.person_id != person_id:
        audit(session, actor, person_id, "feed.list", now=now)
    session.commit()
    return [
        FeedInfo(
            id=r.id,
            label=r.label,
            level=r.level,
            helper_name=names.get(r.helper_grant_id) if r.helper_grant_id else None,
            alarms=r.alarms,
            created_utc=r.created_utc,
            created_by=r.created_by,
            created_role=r.created_role,
            last_fetched_utc=r.last_fetched_utc,
            mine=grant_id is None or r.helper_grant_id == grant_id,
        )
        for r in rows
    ]


def _manager_or_grant(session: Session, actor: Actor, person: Person, now: datetime) -> int | None:
    """None if ``actor`` manages the person's settings (every feed is theirs to see and
    revoke), else the id of the helper's grant to see the calendar; AccessDenied otherwise."""
    if actor.role == Role.HELPER:
        grant = active_grant(session, person, actor.user_id, now=now)
        if grant is not None and grant.manages_settings:
            return None
        return _helper_grant(session, actor, person, now).id
    authorize(session, actor, person.id, "settings.write", now=now)
    return None


def _own_feed(session: Session, actor: Actor, person_id: int, feed_id: int, now: datetime) -> Feed:
    person = _live_person(session, person_id)
    grant_id = _manager_or_grant(session, actor, person, now)
    row = session.get(Feed, feed_id)
    if (
        row is None
        or row.person_id != person_id
        or row.revoked_utc is not None
        or (grant_id is not None and row.helper_grant_id != grant_id)
    ):
        raise DomainError("feed.not_found", "no such feed")
    return row


def _revoke(session: Session, row: Feed, now: datetime) -> None:
    row.revoked_utc = now
    session.execute(delete(FeedRender).where(FeedRender.feed_id == row.id))


def revoke_feed(
    session: Session, actor: Actor, person_id: int, feed_id: int, *, now: datetime
) -> None:
    """Revoke a feed and commit: its URL answers 404 from the next request on."""
    row = _own_feed(session, actor, person_id, feed_id, now)
    _revoke(session, row, now)
    session.commit()


def rotate_feed(
    session: Session, actor: Actor, person_id: int, feed_id: int, *, now: datetime
) -> NewFeed:
    """Give a feed a new URL (the old one dies) with the same name, level and alarms."""
    row = _own_feed(session, actor, person_id, feed_id, now)
    _revoke(session, row, now)
    token = secrets.token_urlsafe(32)
    new = Feed(
        person_id=person_id,
        token_hash=_digest(token),
        label=row.label,
        level=row.level,
        helper_grant_id=row.helper_grant_id,
        alarms=row.alarms,
        locale=row.locale,
        created_utc=now,
        created_by=actor.label[:200],
        created_role=actor.role.value if actor.role else "operator",
    )
    session.add(new)
    session.commit()
    return NewFeed(id=new.id, token=token)


# --- Serving ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFeed:
    """A feed found by its token, with what its rendering depends on."""

    id: int
    person_id: int
    label: str
    level: ViewLevel
    for_helper: bool
    render_key: str
    # The stored render, if any: used when its key still matches.
    stored_key: str | None
    etag: str | None
    last_modified: datetime | None
    last_fetched_utc: datetime | None


def find_feed(session: Session, token: str, *, now: datetime) -> LiveFeed | None:
    """The live feed with this token; None if unknown, revoked, or its grant has ended.

    Reads without committing; :func:`record_fetch` ends the transaction.
    """
    if not 20 <= len(token) <= 100:
        return None
    row = session.execute(
        select(
            Feed.id,
            Feed.person_id,
            Feed.label,
            type_coerce(Feed.level, String),
            Feed.helper_grant_id,
            Feed.alarms,
            Feed.locale,
            Feed.last_fetched_utc,
            Person.calendar_version,
            Person.timezone,
            FeedRender.render_key,
            FeedRender.etag,
            FeedRender.last_modified_utc,
        )
        .join(Person, Person.id == Feed.person_id)
        .outerjoin(FeedRender, FeedRender.feed_id == Feed.id)
        .where(
            Feed.token_hash == _digest(token),
            Feed.revoked_utc.is_(None),
            Person.deleted_utc.is_(None),
        )
    ).first()
    if row is None:
        return None
    level = ViewLevel(row[3]) if row[3] else None
    if row.helper_grant_id is not None:
        level = _grant_level(session, row.helper_grant_id, row.timezone, now)
    if level is None:
        return None
    zone = ZoneInfo(row.timezone)
    return LiveFeed(
        id=row.id,
        person_id=row.person_id,
        label=row.label,
        level=level,
        for_helper=row.helper_grant_id is not None,
        render_key=_render_key(
            row.calendar_version, now.astimezone(zone).date(), level, row.alarms, row.locale
        ),
        stored_key=row.render_key,
        etag=row.etag,
        last_modified=row.last_modified_utc,
        last_fetched_utc=row.last_fetched_utc,
    )


def _grant_level(session: Session, grant_id: int, timezone: str, now: datetime) -> ViewLevel | None:
    """What a helper's grant lets their feed show today; None once it ended."""
    grant = session.get(HelperGrant, grant_id)
    if grant is None or grant.withdrawn_utc is not None or grant.helper_user_id is None:
        return None
    today = now.astimezone(ZoneInfo(timezone)).date()
    if grant.valid_until is not None and grant.valid_until < today:
        return None
    return grant.view_level


def _render_key(version: int, today: date, level: ViewLevel, alarms: bool, locale: str) -> str:
    return f"{FORMAT}:{version}:{today.isoformat()}:{level.value}:{int(alarms)}:{locale}"


@dataclass(frozen=True)
class Rendered:
    """A feed's bytes as served, with their validators."""

    body: bytes
    etag: str
    last_modified: datetime


def current_render(session: Session, feed: LiveFeed, *, now: datetime) -> Rendered | None:
    """The stored render if it is current (its bytes not loaded: None), else a new one,
    stored for the next fetch."""
    if feed.stored_key == feed.render_key and feed.etag and feed.last_modified:
        return None
    return _render_and_store(session, feed.id, now=now)


def stored_body(session: Session, feed_id: int) -> bytes:
    """The stored render's bytes (after :func:`current_render` said they are current)."""
    body = session.scalars(select(FeedRender.body).where(FeedRender.feed_id == feed_id)).first()
    return body or b""


def record_fetch(
    session: Session,
    feed: LiveFeed,
    *,
    now: datetime,
    remote_addr: str,
    status: int,
    method: str = "GET",
) -> None:
    """Audit one fetch of a feed and commit (ending the transaction the fetch read in).

    Who fetched is unknown (whoever holds the address): the row names the feed, by its
    label, with the role ``feed`` (``helper-feed`` for a helper's).
    """
    session.add(
        AuditEvent(
            at_utc=now,
            person_id=feed.person_id,
            actor_label=feed.label[:200],
            actor_role="helper-feed" if feed.for_helper else "feed",
            action="feed.fetch",
            detail=f"feed {feed.id}, {feed.level.value}, {method} {status}",
            remote_addr=remote_addr[:64],
        )
    )
    if feed.last_fetched_utc is None or now - feed.last_fetched_utc >= _FETCH_RESOLUTION:
        row = session.get(Feed, feed.id)
        if row is not None:
            row.last_fetched_utc = now
    session.commit()


# --- Rendering ----------------------------------------------------------------------


def render_feed(session: Session, feed_id: int, *, now: datetime) -> bytes:
    """A feed rendered afresh, stored nowhere (for the benchmark and the tests)."""
    return _render(session, feed_id, now)[1]


def _render(session: Session, feed_id: int, now: datetime) -> tuple[str, bytes]:
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
        level = _grant_level(session, feed.helper_grant_id, person.timezone, now)
    if level is None:
        raise DomainError("feed.not_found", "no such feed")
    zone = ZoneInfo(person.timezone)
    today = now.astimezone(zone).date()
    key = _render_key(person.calendar_version, today, level, feed.alarms, feed.locale)
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


def _render_and_store(session: Session, feed_id: int, *, now: datetime) -> Rendered:
    key, body = _render(session, feed_id, now)
    etag = hashlib.sha256(body).hexdigest()[:32]
    previous = session.execute(
        select(FeedRender.etag, FeedRender.last_modified_utc).where(FeedRender.feed_id == feed_id)
    ).first()
    second = now.astimezone(UTC).replace(microsecond=0)
    if previous is not None and previous.etag == etag:
        modified = previous.last_modified_utc
    elif previous is not None:
        # HTTP dates have whole seconds: a change within the same second as the last one
        # must still read as newer to If-Modified-Since.
        modified = max(second, previous.last_modified_utc + timedelta(seconds=1))
    else:
        modified = second
    values = {
        "feed_id": feed_id,
        "render_key": key,
        "etag": etag,
        "last_modified_utc": modified,
        "rendered_utc": now,
        "body": body,
    }
    dialect = session.get_bind().dialect.name
    # An upsert: two workers may render the same feed at once.
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(FeedRender)
    session.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=[FeedRender.feed_id],
            set_={k: v for k, v in values.items() if k != "feed_id"},
        )
    )
    return Rendered(body=body, etag=etag, last_modified=modified)


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


# --- Rendering again when a calendar changes ---------------------------------------------


def keep_feeds_current(factory: sessionmaker[Session]) -> None:
    """Render the feeds of people whose calendars a commit changed, right after it.

    The phone's next fetch then finds the bytes ready. A render that fails here is only
    logged: the fetch renders whatever is not current.
    """

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        people = session.info.pop(CHANGED_PEOPLE, None)
        if people:
            refresh_feeds(factory, people)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(CHANGED_PEOPLE, None)


def refresh_feeds(factory: sessionmaker[Session], people: Iterable[int]) -> None:
    """Render and store every live feed of these people (one transaction per feed)."""
    with factory() as session:
        feeds = session.scalars(
            select(Feed.id).where(Feed.person_id.in_(set(people)), Feed.revoked_utc.is_(None))
        ).all()
        session.commit()
        for feed_id in feeds:
            try:
                _render_and_store(session, feed_id, now=now_utc())
                session.commit()
            except DomainError:
                session.rollback()  # a helper's feed whose grant has ended: nothing to show
            except Exception as exc:  # noqa: BLE001 - never fail the commit that came before
                session.rollback()
                log.warning("feed %s could not be rendered ahead: %s", feed_id, type(exc).__name__)


# --- One visit to add to a calendar ------------------------------------------------------


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
