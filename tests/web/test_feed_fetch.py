"""The lean way a feed fetch is answered (services.feeds.serve_current): the same answer
and the same audit row as the general path, taken only when the stored render is current
for a person's own feed, and on PostgreSQL on a pool of its own that survives a server
that dropped its connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from werkzeug.http import http_date, is_resource_modified
from werkzeug.test import EnvironBuilder

from calendar_app.models import AuditEvent, Feed, Person
from calendar_app.services import feeds
from calendar_app.services.access import Actor
from tests.support.helpers import recent_calendar, wait_for
from tests.support.world import actor, build_world

# Both databases: the feed fetch's own statements, one per dialect depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

OPERATOR = Actor.operator()
ZONE = "Europe/Stockholm"


@pytest.fixture(autouse=True)
def _no_rendering_ahead(app) -> None:
    """The tests here render at instants of their own choosing; the renderer that works
    ahead after each change would render at the real clock's, in between."""
    app.extensions["feed_renderer"].stop()


def _rendered_feed(app, session, person: Person, now: datetime) -> feeds.NewFeed:
    """A feed whose render for ``now`` is stored, by the general path."""
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=now)
    assert _general(app, made.token, now, feeds.Conditions()) is not None
    return made


def _lean(app, token: str, now: datetime, conditions: feeds.Conditions) -> feeds.Served | None:
    return feeds.serve_current(
        app.extensions["fetch_engine"] or app.extensions["engine"],
        token,
        now=now,
        conditions=conditions,
        zone=ZONE,
        method="GET",
        remote_addr="198.51.100.7",
    )


def _general(app, token: str, now: datetime, conditions: feeds.Conditions) -> feeds.Served | None:
    return feeds.serve_in_general(
        app.extensions["session_factory"],
        token,
        now=now,
        conditions=conditions,
        method="GET",
        remote_addr="198.51.100.7",
    )


def _last_audit(session) -> tuple:
    row = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    session.commit()
    return (
        row.at_utc,
        row.person_id,
        row.actor_user_id,
        row.actor_label,
        row.actor_role,
        row.actor_unit,
        row.action,
        row.detail,
        row.remote_addr,
    )


def test_the_lean_path_answers_and_audits_exactly_as_the_general_path(app, session, clock):
    now = clock.now().replace(microsecond=0)
    person = recent_calendar(session, now)
    made = _rendered_feed(app, session, person, now)
    current = _general(app, made.token, now, feeds.Conditions())
    assert current is not None and current.status == 200
    for conditions in (
        feeds.Conditions(),
        feeds.Conditions(tags=frozenset({current.etag})),
        feeds.Conditions(tags=frozenset({f"{current.etag}-gzip"})),
        feeds.Conditions(tags=frozenset({"other"})),
        feeds.Conditions(tags=frozenset(), any_tag=True),
        feeds.Conditions(since=current.last_modified),
        feeds.Conditions(since=current.last_modified - timedelta(seconds=1)),
    ):
        lean = _lean(app, made.token, now, conditions)
        lean_audit = _last_audit(session)
        general = _general(app, made.token, now, conditions)
        assert lean is not None, conditions
        assert lean == general, conditions
        assert lean_audit == _last_audit(session), conditions
    # The last case is a plain 200; the row names the feed by its label, never its token.
    label = session.scalars(select(Feed.label).where(Feed.id == made.id)).one()
    session.commit()
    assert lean_audit[1:] == (
        person.id,
        None,
        label,
        "feed",
        "",
        "feed.fetch",
        f"feed {made.id}, full, GET 200",
        "198.51.100.7",
    )


def _expected_status(headers: dict[str, str], etag: str, modified: datetime) -> int:
    """The answer werkzeug's own evaluation of the validators gives, for either of the
    feed's two representations (what the app used before it decided in SQL)."""
    environ = EnvironBuilder(headers=headers).get_environ()
    fresh = any(
        not is_resource_modified(environ, etag=tag, last_modified=modified)
        for tag in (etag, f"{etag}-gzip")
    )
    return 304 if fresh else 200


def test_conditional_fetches_answer_as_werkzeug_evaluates_the_validators(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    first = client.get(url)
    etag = first.headers["ETag"].strip('"')
    modified = first.last_modified
    assert modified is not None
    cases = [
        {},
        {"If-None-Match": f'"{etag}"'},
        {"If-None-Match": f'"{etag}-gzip"'},
        {"If-None-Match": f'W/"{etag}"'},
        {"If-None-Match": f'"other", "{etag}"'},
        {"If-None-Match": '"other"'},
        {"If-None-Match": "*"},
        {"If-None-Match": "not even quoted"},
        {"If-Modified-Since": http_date(modified)},
        {"If-Modified-Since": http_date(modified - timedelta(seconds=1))},
        {"If-Modified-Since": http_date(modified + timedelta(days=1))},
        {"If-Modified-Since": "yesterday, roughly"},
        {"If-None-Match": '"other"', "If-Modified-Since": http_date(modified)},
        {"If-None-Match": f'"{etag}"', "If-Modified-Since": http_date(modified - timedelta(1))},
    ]
    answers = {}
    for headers in cases:
        for encoding in ("gzip", "identity"):
            response = client.get(url, headers={**headers, "Accept-Encoding": encoding})
            answers[(tuple(headers.items()), encoding)] = response.status_code
            assert response.status_code == _expected_status(headers, etag, modified), headers
    # The cases cover both answers, with each kind of validator.
    assert set(answers.values()) == {200, 304}


def test_only_a_persons_own_feed_with_a_current_render_takes_the_lean_path(app, session, clock):
    when = clock.now().replace(microsecond=0)
    world = build_world(session, when)
    made = feeds.create_feed(session, OPERATOR, world.person_id, level="full", now=when)
    nothing = feeds.Conditions()

    assert _lean(app, made.token, when, nothing) is None  # nothing rendered yet
    assert _general(app, made.token, when, nothing) is not None
    assert _lean(app, made.token, when, nothing) is not None
    # The next local day needs a new render (visits move from "coming" to "past").
    assert _lean(app, made.token, when + timedelta(days=1), nothing) is None
    # A helper's feed shows what the grant allows at each fetch: the general path decides.
    helper = actor(session, "helper_time_place")
    helpers = feeds.create_feed(session, helper, world.person_id, level="full", now=when)
    assert _general(app, helpers.token, when, nothing) is not None
    assert _lean(app, helpers.token, when, nothing) is None
    # A change to the calendar: the stored render is out of date until made again.
    session.execute(
        update(Person)
        .where(Person.id == world.person_id)
        .values(calendar_version=Person.calendar_version + 1)
    )
    session.commit()
    assert _lean(app, made.token, when, nothing) is None
    # No live feed: unknown, malformed, revoked.
    assert _general(app, made.token, when, nothing) is not None
    assert _lean(app, made.token, when, nothing) is not None
    assert _lean(app, "A" * len(made.token), when, nothing) is None
    assert _lean(app, "short", when, nothing) is None
    feeds.revoke_feed(session, OPERATOR, world.person_id, made.id, now=when)
    assert _lean(app, made.token, when, nothing) is None


def test_the_render_is_current_for_the_persons_local_day_not_the_utc_one(app, session):
    # 23:30 UTC is 00:30 the next day in Stockholm.
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    person = recent_calendar(session, late)
    made = _rendered_feed(app, session, person, late)

    assert _lean(app, made.token, late, feeds.Conditions()) is not None
    assert _lean(app, made.token, late + timedelta(hours=23), feeds.Conditions()) is not None
    # An hour earlier it was still the 24th locally: another day, another render.
    assert _lean(app, made.token, late - timedelta(hours=1), feeds.Conditions()) is None


def test_a_person_in_another_time_zone_is_served_right_on_either_path(app, session, client, clock):
    person = recent_calendar(session, clock.now(), zone="America/New_York")
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    first = client.get(url)
    assert first.status_code == 200
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    lean = _lean(app, made.token, clock.now(), feeds.Conditions())
    if app.extensions["fetch_engine"] is not None:
        # PostgreSQL works out the day in one zone only, the service's own (its local
        # date is passed in): a person elsewhere takes the general path.
        assert lean is None
    else:
        assert lean is not None and lean.status == 200


# PostgreSQL only: SQLite has no server to drop a connection, and no pool of its own for
# fetches (everything else here runs on both).
@pytest.mark.databases("postgresql")
def test_a_fetch_on_a_connection_the_server_dropped_is_answered_on_a_new_one(
    app, session, client, clock
):
    engine = app.extensions["fetch_engine"]
    assert engine.pool.size() == app.config["FETCH_CONNECTIONS"] == 4  # one per web thread
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    assert client.get(url).status_code == 200  # renders
    assert client.get(url).status_code == 200  # the lean path: a connection in its pool
    pooled = engine.raw_connection()
    pid = pooled.driver_connection.info.backend_pid
    pooled.close()
    # As a server restart or an idle timeout would: the pooled connection is dead.
    session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    session.commit()
    audited = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    session.commit()

    again = client.get(url)

    assert again.status_code == 200 and again.data
    new = session.scalars(select(AuditEvent).where(AuditEvent.id > audited)).all()
    session.commit()
    assert [row.detail for row in new] == [f"feed {made.id}, full, GET 200"]
    fresh = engine.raw_connection()
    fresh_pid = fresh.driver_connection.info.backend_pid
    assert fresh_pid != pid
    fresh.close()

    # Whatever releases the app's connections (the tests, a stopping process) releases
    # this pool's with them.
    app.extensions["engine"].dispose()

    def closed() -> bool:
        alive = session.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": fresh_pid}
        )
        session.commit()
        return alive == 0

    wait_for(closed)


_REFUSE_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
_ALLOW_AUDIT = {
    "sqlite": ["DROP TRIGGER refuse_audit"],
    "postgresql": ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"],
}


def test_a_fetch_whose_audit_row_cannot_be_written_is_not_served_and_changes_nothing(
    app, session, client, clock
):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    assert client.get(url).status_code == 200  # renders: the next fetch takes the lean path
    long_ago = clock.now() - timedelta(hours=1)
    session.execute(update(Feed).where(Feed.id == made.id).values(last_fetched_utc=long_ago))
    session.commit()
    audited = session.scalar(select(func.count()).select_from(AuditEvent))
    session.commit()
    dialect = session.get_bind().dialect.name
    for statement in _REFUSE_AUDIT[dialect]:
        session.execute(text(statement))
    session.commit()
    try:
        refused = client.get(url)
    finally:
        for statement in _ALLOW_AUDIT[dialect]:
            session.execute(text(statement))
        session.commit()

    # Every read is audited: without its audit row the calendar is not sent, and the
    # feed's "last fetched" is not written either.
    assert refused.status_code == 500 and b"BEGIN:VCALENDAR" not in refused.data
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audited
    assert session.scalars(select(Feed.last_fetched_utc).where(Feed.id == made.id)).one() == (
        long_ago
    )
    session.commit()
    assert client.get(url).status_code == 200  # and the next fetch, audited, is served
