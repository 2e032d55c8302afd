"""Engine and session factory, built by the app factory (never at import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, String, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    """Declarative base of every table."""


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC; always read back timezone-aware.

    SQLite has no timezone type: there the value is stored as naive UTC text in
    SQLAlchemy's own layout ("2026-03-29 01:00:00.000000"), written and read here
    directly, because the generic text parser costs more than the rest of a calendar query.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware instant is required")
        if dialect.name == "sqlite":
            return sqlite_instant(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return from_sqlite_instant(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_instant(value: datetime) -> str:
    """An aware instant as UTCDateTime stores it in SQLite (text that sorts as time does)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def from_sqlite_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# An execution option for a transaction that only reads (see make_engine): on SQLite it
# takes no write lock, so background work that only reads never holds requests up.
READ_ONLY = "calendar_app_read_only"


def begin_reading(session: Session) -> None:
    """Start ``session``'s next transaction as one that only reads (SQLite: no write lock);
    call it outside a transaction, and end the transaction before writing."""
    if session.in_transaction():
        raise RuntimeError("begin_reading needs a session outside a transaction")
    session.connection(execution_options={READ_ONLY: True})


def make_engine(url: URL) -> Engine:
    """Create the engine for ``url``; SQLite gets foreign keys and a busy timeout.

    Bound parameters are kept out of SQL logs and error messages: they hold personnummer.
    """
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so that BEGIN IMMEDIATE can be used for writes.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Every transaction takes the write lock at its start. A deferred transaction
            # that reads and then writes fails at once ("database is locked") if another
            # connection wrote in between; for the embedded single-site default, waiting
            # for the lock is the right trade. A transaction that only reads, and may take
            # long (a feed's render), asks for READ_ONLY: a snapshot, no write lock.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def make_fetch_engine(main: Engine, connections: int) -> Engine | None:
    """PostgreSQL only: a second, small pool for feed fetches (see
    services.feeds.serve_current), in autocommit and without the ping before each use.

    Phones poll feeds all day; on a host where a round trip to the server costs a few
    hundred microseconds, the ping doubled the fetch's trips. Instead, a fetch that finds
    its connection dead drops the pool and runs its one statement again. ``connections`` is
    what one process keeps open (its threads); more are opened, and closed after use,
    only under a burst. Disposing of ``main`` disposes of this pool too, so whatever
    releases the app's connections releases these.
    """
    if main.dialect.name != "postgresql":
        return None
    engine = create_engine(
        main.url, pool_size=connections, max_overflow=connections, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True

    @event.listens_for(main, "engine_disposed")
    def _with_the_main_pool(_main: Engine) -> None:
        engine.dispose()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory; sessions never expire objects on commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that is always closed; committing is the use case's job."""
    session = factory()
    try:
        yield session
    finally:
        session.close()
