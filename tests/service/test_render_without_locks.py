"""A feed's render in the background holds no write lock while it renders: on SQLite (the
embedded default) a request that writes meanwhile gets the lock within 200 ms, and on
PostgreSQL the feed's own row stays free. A render made while the calendar changed is
never served as current."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from calendar_app.services import feeds
from calendar_app.services.access import Actor
from tests.support.helpers import do_import, event, recent_calendar, vcalendar

pytestmark = pytest.mark.databases("sqlite", "postgresql")

WAIT_AT_MOST = 0.2  # seconds a request may wait for the write lock behind background work


@contextmanager
def render_held_up(monkeypatch, app, person_id: int, now) -> Iterator[threading.Thread]:
    """A background render of the person's feeds, stopped in the middle of rendering
    until the block ends."""
    rendering, go_on = threading.Event(), threading.Event()
    real = feeds.render

    def slow(*args, **kwargs):
        rendering.set()
        assert go_on.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(feeds, "render", slow)
    thread = threading.Thread(
        target=feeds.refresh_feeds,
        args=(app.extensions["session_factory"], [person_id]),
        kwargs={"now": now},
    )
    thread.start()
    assert rendering.wait(30)
    try:
        yield thread
    finally:
        go_on.set()
        thread.join(30)
        monkeypatch.setattr(feeds, "render", real)


def _impatient_write(app, feed_id: int) -> None:
    """A write that waits at most WAIT_AT_MOST for its lock, or fails."""
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": WAIT_AT_MOST})
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("UPDATE feed SET label = 'Nytt namn' WHERE id = ?", (feed_id,))
            conn.exec_driver_sql("COMMIT")
    else:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(WAIT_AT_MOST * 1000)}ms'"))
            conn.execute(
                text("UPDATE feed SET label = 'Nytt namn' WHERE id = :id"), {"id": feed_id}
            )
    engine.dispose()


def test_a_request_writes_while_a_feed_renders_in_the_background(app, session, now, monkeypatch):
    person = recent_calendar(session, now)
    made = feeds.create_feed(session, Actor.operator(), person.id, level="full", now=now)
    session.commit()
    with render_held_up(monkeypatch, app, person.id, now):
        _impatient_write(app, made.id)  # raised "database is locked" while rendering held it
    live = feeds.find_feed(session, made.token, now=now)
    session.commit()
    assert live is not None and live.stored_key == live.render_key  # and the render stored


def test_a_render_overtaken_by_a_change_is_not_served_as_current(
    app, client, session, now, monkeypatch
):
    person = recent_calendar(session, now)
    made = feeds.create_feed(session, Actor.operator(), person.id, level="full", now=now)
    session.commit()
    with render_held_up(monkeypatch, app, person.id, now):
        do_import(
            session,
            person,
            vcalendar(event("ny", ":20261210T090000Z", ":20261210T100000Z", "Ny tid")),
            now,
            source="annan",
        )
    body = client.get(feeds.feed_path(made.token)).get_data(as_text=True)
    assert "Ny tid" in body
