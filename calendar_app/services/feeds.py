"""Calendar feeds: secret URLs a phone subscribes to, each at a level, every fetch audited.

A feed's token is 256 random bits shown once; only its SHA-256 is stored. The rendered
bytes (see :mod:`calendar_app.services.feed_render`) are kept per feed with the key they
were made from (the person's calendar version, the day, the level and the options) and
rendered again soon after a change to the person's calendar commits, so that the phone's
next fetch finds them ready.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from psycopg import OperationalError
from sqlalchemy import Engine, bindparam, delete, event, insert, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import String

from calendar_app.clock import Clock
from calendar_app.db import begin_reading, from_sqlite_instant, session_scope, sqlite_instant
from calendar_app.domain import feed as feed_format
from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    AuditEvent,
    Feed,
    FeedRender,
    HelperGrant,
    Person,
    Role,
    ViewLevel,
)
from calendar_app.services.access import AccessDenied, Actor, active_grant, audit, authorize
from calendar_app.services.audit import FEED_FETCH
from calendar_app.services.feed_render import (
    DEFAULT_LABEL,
    FORMAT,
    grant_level,
    render,
    render_key,
)
from calendar_app.services.locking import CHANGED_PEOPLE

log = logging.getLogger(__name__)

# The words a feed's level is given by at the command line and in forms.
LEVELS = {
    "full": ViewLevel.FULL,
    "limited": ViewLevel.TIME_PLACE,
    "time_place": ViewLevel.TIME_PLACE,
    "busy": ViewLevel.BUSY,
}
MAX_FEEDS = 10  # live feeds per person
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
    body_gzip: bytes | None
    last_fetched_utc: datetime | None


# Built once: this path runs for every poll of every phone.
_FIND_FEED = (
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
        # Read with the rest: one query less for the fetch after a change, and a 304
        # carries few enough bytes that reading them anyway costs little.
        FeedRender.body_gzip,
    )
    .join(Person, Person.id == Feed.person_id)
    .outerjoin(FeedRender, FeedRender.feed_id == Feed.id)
    .where(
        Feed.token_hash == bindparam("token_hash"),
        Feed.revoked_utc.is_(None),
        Person.deleted_utc.is_(None),
    )
)


_AUDIT_COLUMNS = (
    "at_utc",
    "person_id",
    "actor_label",
    "actor_role",
    "actor_unit",
    "action",
    "detail",
    "remote_addr",
)
_AUDIT_FETCH = insert(AuditEvent)
_FETCHED = (
    update(Feed).where(Feed.id == bindparam("feed_id")).values(last_fetched_utc=bindparam("at"))
)
# PostgreSQL: the audit row and the "last fetched" in one statement, so that in autocommit
# (see fetching) they are still one transaction. SQLite has no writes in WITH.
# The INSERT's parameters are renamed: compiled from the parameters' keys, the UPDATE in
# WITH would also set any feed column a key names (person_id).
_AUDIT_FETCH_AND_MARK = (
    insert(AuditEvent)
    .values({column: bindparam(f"audit_{column}") for column in _AUDIT_COLUMNS})
    .add_cte(
        update(Feed)
        .where(Feed.id == bindparam("feed_id"))
        .values(last_fetched_utc=bindparam("at"))
        .cte("fetched")
    )
)


@dataclass(frozen=True)
class Conditions:
    """A GET's validators, evaluated in the order RFC 9110 (13.2.2) gives: If-None-Match
    decides when present, else If-Modified-Since. A feed has two representations (see
    web/feeds.py), the plain one with the render's ETag and the gzip one with ``-gzip``
    after it; a client holding either has the current render."""

    tags: frozenset[str] | None = None  # If-None-Match's entity tags (compared weakly)
    any_tag: bool = False  # If-None-Match: *
    since: datetime | None = None  # If-Modified-Since

    def fresh(self, etag: str, last_modified: datetime) -> bool:
        """Whether the client's copy is current, so the answer is 304."""
        if self.tags is not None:
            return self.any_tag or etag in self.tags or f"{etag}-gzip" in self.tags
        return self.since is not None and last_modified <= self.since


@dataclass(frozen=True)
class Served:
    """A fetch's answer: 304, or 200 with the render's bytes (gzip-compressed, as stored)."""

    status: int
    etag: str
    last_modified: datetime
    body_gzip: bytes | None  # None for a 304


# PostgreSQL: the usual fetch (a person's own feed whose stored render is current) in one
# statement, and so one round trip to the server: it finds the feed, tells whether the
# stored render is current, decides 200 or 304 as Conditions.fresh does, and writes the
# audit row and the "last fetched" (once a minute) as record_fetch does. In autocommit
# this is one transaction: the audit row is committed before the answer, or nothing is.
# Everything else writes nothing here and returns current = false, or no row for no live
# feed; the caller then takes the general path (find_feed, current_render, record_fetch).
#
# The render key is built here as feed_render.render_key builds it, for a person in the
# service's own time zone, whose local date the caller passes: the date is worked out by
# Python's zoneinfo, never by the server's time zone data. A key built differently here
# would only send every fetch down the general path (tested).
# The body is read only for a 200, and in binary: half the bytes of bytea's text form.
SERVE_CURRENT = """
WITH found AS (
    SELECT feed.id, feed.person_id, feed.label, feed.level, feed.last_fetched_utc,
           feed_render.etag, feed_render.last_modified_utc,
           feed.helper_grant_id IS NULL
               AND person.timezone = %(zone)s
               AND feed_render.render_key = concat_ws(
                   ':', %(format)s::int, person.calendar_version, %(today)s::text,
                   feed.level, feed.alarms::int, feed.locale
               ) AS current
    FROM feed
    JOIN person ON person.id = feed.person_id
    LEFT JOIN feed_render ON feed_render.feed_id = feed.id
    WHERE feed.token_hash = %(token_hash)s
      AND feed.revoked_utc IS NULL
      AND person.deleted_utc IS NULL
),
served AS (
    SELECT found.*,
           CASE WHEN CASE WHEN %(tags)s::text[] IS NOT NULL
                          THEN %(any_tag)s
                               OR found.etag = ANY (%(tags)s::text[])
                               OR found.etag || '-gzip' = ANY (%(tags)s::text[])
                          ELSE coalesce(found.last_modified_utc <= %(since)s::timestamptz, false)
                     END
                THEN 304 ELSE 200
           END AS status
    FROM found
    WHERE found.current
),
audited AS (
    INSERT INTO audit_event
        (at_utc, person_id, actor_label, actor_role, actor_unit, action, detail, remote_addr)
    SELECT %(now)s, served.person_id, left(served.label, 200), 'feed', '', %(action)s,
           concat('feed ', served.id, ', ', served.level, ', ',
                  %(method)s::text, ' ', served.status),
           %(remote_addr)s
    FROM served
),
marked AS (
    UPDATE feed SET last_fetched_utc = %(now)s
    FROM served
    WHERE feed.id = served.id
      AND (served.last_fetched_utc IS NULL
           OR served.last_fetched_utc <= %(now)s - %(resolution)s::interval)
)
SELECT coalesce(found.current, false), served.status, found.etag, found.last_modified_utc,
       CASE WHEN served.status = 200
            THEN (SELECT body_gzip FROM feed_render WHERE feed_id = found.id)
       END
FROM found LEFT JOIN served ON served.id = found.id
"""


def serve_current(
    engine: Engine,
    token: str,
    *,
    now: datetime,
    conditions: Conditions,
    zone: str,
    method: str,
    remote_addr: str,
) -> Served | None:
    """Answer the usual fetch, a person's own feed whose stored render is current, the
    lean way; None when the general path must answer it (no live feed, a helper's feed, a
    render to make; on PostgreSQL also a person in another time zone than ``zone``).

    This runs for every poll of every phone: it uses the driver's connection directly,
    without the Session and the ORM, whose bookkeeping costs more than the queries here.
    The general path (find_feed, current_render, record_fetch) gives the same answer and
    writes the same audit row (tested side by side).
    """
    if not 20 <= len(token) <= 100:
        return None
    fetch = _Fetch(_digest(token), now, conditions, method, remote_addr[:64])
    if engine.dialect.name == "postgresql":
        return _serve_current_postgresql(engine, fetch, zone)
    return _serve_current_sqlite(engine, fetch)


@dataclass(frozen=True)
class _Fetch:
    token_hash: str
    now: datetime
    conditions: Conditions
    method: str
    remote_addr: str


def _serve_current_postgresql(engine: Engine, fetch: _Fetch, zone: str) -> Served | None:
    """SERVE_CURRENT, one round trip. ``engine`` is the one
    :func:`calendar_app.db.make_fetch_engine` makes: autocommit, no ping before each use.

    A connection found dead most often means the server restarted, so every pooled
    connection is dropped and the statement run once more on a new one. If the first run
    had committed before its connection died, the fetch is audited twice, never not at
    all.
    """
    tags = fetch.conditions.tags
    params = {
        "token_hash": fetch.token_hash,
        "zone": zone,
        "today": fetch.now.astimezone(ZoneInfo(zone)).date().isoformat(),
        "format": FORMAT,
        "tags": sorted(tags) if tags is not None else None,
        "any_tag": fetch.conditions.any_tag,
        "since": fetch.conditions.since,
        "now": fetch.now,
        "action": FEED_FETCH,
        "method": fetch.method,
        "remote_addr": fetch.remote_addr,
        "resolution": _FETCH_RESOLUTION,
    }
    for attempt in (1, 2):
        connection = engine.raw_connection()
        try:
            driver = connection.driver_connection
            assert driver is not None  # a connection just checked out
            with driver.cursor(binary=True) as cursor:
                row = cursor.execute(SERVE_CURRENT, params).fetchone()
            break
        except OperationalError as error:
            # psycopg's errors are the DBAPI's, which SQLAlchemy types as a protocol.
            dead = engine.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
            if attempt == 2 or not dead:
                raise
            connection.invalidate(error)
            engine.dispose()
        finally:
            connection.close()  # back to the pool; an invalidated one is discarded
    if row is None or not row[0]:
        return None
    _current, status, etag, last_modified, body = row
    return Served(status, etag, last_modified.astimezone(UTC), body)


# SQLite: _FIND_FEED and the writes of record_fetch, on the driver's connection
# (instants as UTCDateTime stores them).
_SQLITE_FIND = str(_FIND_FEED.compile(dialect=sqlite.dialect()))
_SQLITE_AUDIT = """
INSERT INTO audit_event
    (at_utc, person_id, actor_label, actor_role, actor_unit, action, detail, remote_addr)
VALUES (?, ?, ?, 'feed', '', ?, ?, ?)
"""
_SQLITE_FETCHED = "UPDATE feed SET last_fetched_utc = ? WHERE id = ?"


class _Found(NamedTuple):
    """A row of _FIND_FEED as SQLite's driver gives it."""

    feed_id: int
    person_id: int
    label: str
    level: str | None
    helper_grant_id: int | None
    alarms: int
    locale: str
    last_fetched_utc: str | None
    calendar_version: int
    timezone: str
    render_key: str | None
    etag: str | None
    last_modified_utc: str | None
    body_gzip: bytes | None


def _serve_current_sqlite(engine: Engine, fetch: _Fetch) -> Served | None:
    """Find, audit and commit in one transaction that takes the write lock at its start
    (BEGIN IMMEDIATE, as every transaction here does; see db.py)."""
    connection = engine.raw_connection()
    try:
        driver = connection.driver_connection
        assert driver is not None  # a connection just checked out
        driver.execute("BEGIN IMMEDIATE")
        try:
            row = driver.execute(_SQLITE_FIND, (fetch.token_hash,)).fetchone()
            found = _Found(*row) if row is not None else None
            served = _sqlite_served(found, fetch) if found is not None else None
            if found is None or served is None:
                driver.execute("ROLLBACK")
                return None
            at = sqlite_instant(fetch.now)
            detail = _fetch_detail(found.feed_id, str(found.level), fetch.method, served.status)
            driver.execute(
                _SQLITE_AUDIT,
                (at, found.person_id, found.label[:200], FEED_FETCH, detail, fetch.remote_addr),
            )
            last = found.last_fetched_utc
            if _mark_due(from_sqlite_instant(last) if last else None, fetch.now):
                driver.execute(_SQLITE_FETCHED, (at, found.feed_id))
            driver.execute("COMMIT")
            return served
        except BaseException:
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            raise
    finally:
        connection.close()


def _sqlite_served(found: _Found, fetch: _Fetch) -> Served | None:
    """The answer from a stored render that is current for a person's own feed."""
    if found.helper_grant_id is not None or found.level is None or found.render_key is None:
        return None
    today = fetch.now.astimezone(ZoneInfo(found.timezone)).date()
    key = render_key(
        found.calendar_version, today, ViewLevel(found.level), bool(found.alarms), found.locale
    )
    if found.render_key != key:
        return None
    assert found.etag is not None and found.last_modified_utc is not None  # with its key
    last_modified = from_sqlite_instant(found.last_modified_utc)
    if fetch.conditions.fresh(found.etag, last_modified):
        return Served(304, found.etag, last_modified, None)
    return Served(200, found.etag, last_modified, found.body_gzip)


def serve_in_general(
    factory: sessionmaker[Session],
    token: str,
    *,
    now: datetime,
    conditions: Conditions,
    method: str,
    remote_addr: str,
) -> Served | None:
    """Answer any fetch of a live feed (None: no live feed): a helper's feed at what the
    grant allows today, a feed whose render must be made first, and everything
    serve_current leaves. The answer and the audit row are those serve_current gives."""
    with fetching(factory) as session:
        feed = find_feed(session, token, now=now)
        if feed is None:
            session.rollback()
            return None
        rendered = current_render(session, factory, feed, now=now)
        etag = rendered.etag if rendered else feed.etag
        modified = rendered.last_modified if rendered else feed.last_modified
        assert etag is not None and modified is not None
        status = 304 if conditions.fresh(etag, modified) else 200
        record_fetch(session, feed, now=now, remote_addr=remote_addr, status=status, method=method)
    body = (rendered.body_gzip if rendered else feed.body_gzip) if status == 200 else None
    return Served(status, etag, modified, body)


def _fetch_detail(feed_id: int, level: str, method: str, status: int) -> str:
    """The audit row's detail for a fetch (SERVE_CURRENT writes the same in SQL)."""
    return f"feed {feed_id}, {level}, {method} {status}"


def _mark_due(last_fetched: datetime | None, now: datetime) -> bool:
    """Whether a fetch writes the feed's "last fetched" (once a minute is enough)."""
    return last_fetched is None or now - last_fetched >= _FETCH_RESOLUTION


@contextmanager
def fetching(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The session one feed fetch reads and audits in.

    On PostgreSQL its statements commit one by one (autocommit): a fetch reads the feed in
    one statement and writes its audit row in one, so an explicit BEGIN and COMMIT would be
    two more round trips to the server for every poll of every phone. The audit row is
    still committed, durably, before the answer is sent. SQLite has no round trips to save
    and keeps its transaction (which holds the write lock from its start, see db.py).
    """
    with session_scope(factory) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def find_feed(session: Session, token: str, *, now: datetime) -> LiveFeed | None:
    """The live feed with this token; None if unknown, revoked, or its grant has ended.

    Reads without committing; :func:`record_fetch` ends the transaction.
    """
    if not 20 <= len(token) <= 100:
        return None
    # Core statements, built once, on the session's connection here and in record_fetch:
    # this path runs for every poll of every phone, and the ORM's bookkeeping costs more
    # than the queries themselves.
    row = session.connection().execute(_FIND_FEED, {"token_hash": _digest(token)}).first()
    if row is None:
        return None
    level = ViewLevel(row[3]) if row[3] else None
    if row.helper_grant_id is not None:
        level = grant_level(session, row.helper_grant_id, row.timezone, now)
    if level is None:
        return None
    zone = ZoneInfo(row.timezone)
    return LiveFeed(
        id=row.id,
        person_id=row.person_id,
        label=row.label,
        level=level,
        for_helper=row.helper_grant_id is not None,
        render_key=render_key(
            row.calendar_version, now.astimezone(zone).date(), level, row.alarms, row.locale
        ),
        stored_key=row.render_key,
        etag=row.etag,
        last_modified=row.last_modified_utc,
        body_gzip=row.body_gzip,
        last_fetched_utc=row.last_fetched_utc,
    )


@dataclass(frozen=True)
class Rendered:
    """A feed's bytes (gzip-compressed, as stored), with their validators."""

    body_gzip: bytes
    etag: str
    last_modified: datetime


def current_render(
    session: Session, factory: sessionmaker[Session], feed: LiveFeed, *, now: datetime
) -> Rendered | None:
    """None if the stored render is current (``feed`` carries its bytes), else a new
    render, stored for the next fetch.

    ``session`` is the fetch's own (see :func:`fetching`): its read is ended here, and the
    render is made and stored in a transaction of its own, which ``fetching``'s autocommit
    could not give. A render is a cache: if the audit that follows fails, it is still good.
    (The audit then runs on a connection checked out anew, in an ordinary transaction.)
    """
    if feed.stored_key == feed.render_key and feed.etag and feed.last_modified:
        return None
    session.commit()  # on SQLite, the fetch's write lock is given up for the render's
    with session_scope(factory) as rendering:
        rendered = _render_and_store(rendering, feed.id, now=now)
        rendering.commit()
    return rendered


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
    connection = session.connection()
    audit_row = {
        "at_utc": now,
        "person_id": feed.person_id,
        "actor_label": feed.label[:200],
        "actor_role": "helper-feed" if feed.for_helper else "feed",
        "actor_unit": "",
        "action": FEED_FETCH,
        "detail": _fetch_detail(feed.id, feed.level.value, method, status),
        "remote_addr": remote_addr[:64],
    }
    if not _mark_due(feed.last_fetched_utc, now):
        connection.execute(_AUDIT_FETCH, audit_row)
    elif connection.dialect.name == "postgresql":
        renamed = {f"audit_{column}": value for column, value in audit_row.items()}
        connection.execute(_AUDIT_FETCH_AND_MARK, {**renamed, "feed_id": feed.id, "at": now})
    else:
        connection.execute(_AUDIT_FETCH, audit_row)
        connection.execute(_FETCHED, {"feed_id": feed.id, "at": now})
    session.commit()


def _render_and_store(session: Session, feed_id: int, *, now: datetime) -> Rendered:
    """Render a feed and store the render; ``session`` must be outside a transaction.

    The render is made in a transaction that only reads (on SQLite it takes no write lock,
    so nobody waits for it), and stored in a short one that locks the feed's row first: a
    revocation either comes after the store (and deletes the render) or before it (and
    nothing is stored for a dead feed). A render made while the calendar changed carries
    the older version in its key, so a fetch renders again rather than serve it.
    """
    begin_reading(session)
    try:
        key, body = render(session, feed_id, now)
    finally:
        session.rollback()  # the read ends here: nothing was written
    live = session.execute(
        select(Feed.id).where(Feed.id == feed_id, Feed.revoked_utc.is_(None)).with_for_update()
    ).first()
    if live is None:
        raise DomainError("feed.not_found", "no such feed")
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
    compressed = gzip.compress(body, compresslevel=6, mtime=0)  # mtime=0: reproducible bytes
    values = {
        "feed_id": feed_id,
        "render_key": key,
        "etag": etag,
        "last_modified_utc": modified,
        "rendered_utc": now,
        "body_gzip": compressed,
    }
    dialect = session.get_bind().dialect.name
    # An upsert: two workers may render the same feed at once.
    upsert = (postgresql if dialect == "postgresql" else sqlite).insert(FeedRender)
    session.execute(
        upsert.values(**values).on_conflict_do_update(
            index_elements=[FeedRender.feed_id],
            set_={k: v for k, v in values.items() if k != "feed_id"},
        )
    )
    return Rendered(body_gzip=compressed, etag=etag, last_modified=modified)


# --- Rendering again when a calendar changes ---------------------------------------------


def keep_feeds_current(factory: sessionmaker[Session], clock: Clock) -> AheadRenderer:
    """Render the feeds of people whose calendars a commit changed, soon after it.

    The rendering runs on a thread of its own, so whoever made the change (a caregiver
    booking, a sync round) does not wait for it; the phone's next fetch finds the bytes
    ready. A fetch that comes first, or a render that fails, is no harm: the fetch renders
    whatever is not current.
    """
    renderer = AheadRenderer(factory, clock)

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        people = session.info.pop(CHANGED_PEOPLE, None)
        if people:
            renderer.submit(people)

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(CHANGED_PEOPLE, None)

    return renderer


class AheadRenderer:
    """One background thread per session factory that renders the feeds of the people
    submitted to it, each person once however often they are submitted while waiting. The
    thread ends when it has had nothing to do for a while, and starts again when needed."""

    IDLE_SECONDS = 5.0

    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.clock = clock
        self.lock = threading.Lock()
        self.waiting: list[int] = []
        self.wake = threading.Condition(self.lock)
        self.running = False
        self.thread: threading.Thread | None = None
        self.stopped = False

    def submit(self, people: Iterable[int]) -> None:
        with self.lock:
            if self.stopped:
                return
            for person_id in people:
                if person_id not in self.waiting:
                    self.waiting.append(person_id)
            self.wake.notify()
            if not self.running:
                self.running = True
                self.thread = threading.Thread(target=self._run, name="feed-renderer", daemon=True)
                self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Render what is waiting, then end the thread (before the engine is disposed)."""
        with self.lock:
            self.stopped = True
            self.wake.notify()
            thread = self.thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.waiting and not self.stopped:
                    self.wake.wait(self.IDLE_SECONDS)
                if not self.waiting:
                    self.running = False
                    return
                person_id = self.waiting.pop(0)
            refresh_feeds(self.factory, [person_id], now=self.clock.now())


def refresh_feeds(factory: sessionmaker[Session], people: Iterable[int], *, now: datetime) -> None:
    """Render and store every live feed of these people (one transaction per feed); any
    failure is logged, never raised."""
    try:
        with factory() as session:
            feeds = session.scalars(
                select(Feed.id).where(Feed.person_id.in_(set(people)), Feed.revoked_utc.is_(None))
            ).all()
            session.commit()
            for feed_id in feeds:
                try:
                    _render_and_store(session, feed_id, now=now)
                    session.commit()
                except DomainError:
                    session.rollback()  # a helper's feed whose grant has ended: nothing to show
    except Exception as exc:  # noqa: BLE001 - the fetch renders what is not current
        log.warning("feeds could not be rendered ahead: %s", type(exc).__name__)
