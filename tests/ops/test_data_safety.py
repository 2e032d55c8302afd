"""Data safety (#12): an upgrade keeps every row it finds, and a backup gives back every row
and a working application, on PostgreSQL and on SQLite.

The migrations run as ``calendar-app init-db`` runs them: through the application's own
engine (``make_engine``: on SQLite with foreign keys on). The backups are made as
docs/backup-restore.md tells the operator to make them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from calendar_app import create_app, migrations, sealing
from calendar_app.clock import FrozenClock
from calendar_app.db import Base, UTCDateTime, make_engine
from calendar_app.demo import LOGINS, PERSONNUMMER, ZONE, demo_feed, load_demo
from calendar_app.models import (
    AuditEvent,
    Booking,
    Person,
    Provider,
    Reminder,
    ReminderState,
    Source,
    SourceState,
)
from calendar_app.services.calendar import CACHE as calendar_cache
from tests.conftest import BACKENDS, NOW, _pg_url

SCRIPTS = ScriptDirectory(str(migrations.HERE))
HEAD = SCRIPTS.get_current_head()
# Oldest first; a new migration makes its parent one more revision to upgrade from.
OLDER_REVISIONS = [
    s.revision for s in reversed(list(SCRIPTS.walk_revisions())) if s.revision != HEAD
]


# --- Scratch databases, made and dropped by these tests ------------------------------------


def _pg_base() -> URL:
    base = _pg_url()
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set (make test sets it)")
    return make_url(base)


def _scratch_name(kind: str) -> str:
    return f"pk_test_{kind}_{os.getpid()}_{secrets.token_hex(3)}"


def _admin_engine(url: URL) -> Engine:
    """An engine for CREATE and DROP, which may not run inside a transaction."""
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """An empty database of its own: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield make_url(f"sqlite:///{tmp_path / 'upgrade.sqlite3'}")
        return
    base = _pg_base()
    schema = _scratch_name("upgrade")
    admin = _admin_engine(base)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield base.update_query_dict({"options": f"-csearch_path={schema}"})
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_databases() -> Iterator[tuple[URL, URL]]:
    """Two new, empty PostgreSQL databases (a live one and one to restore into), dropped
    afterwards even if a connection is still open."""
    base = _pg_base()
    names = (_scratch_name("live"), _scratch_name("restored"))
    admin = _admin_engine(base)
    made: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                made.append(name)
        yield base.set(database=names[0]), base.set(database=names[1])
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- Upgrading from every earlier revision ------------------------------------------------

MOMENT = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)  # just before the clocks move


def _value(table: Table, column: Column[Any], number: int, dialect: str) -> object:
    """A value for ``column`` that no default or NULL could be mistaken for."""
    model = Base.metadata.tables.get(table.name)
    model_column = model.columns.get(column.name) if model is not None else None
    kind = column.type.python_type
    if kind is bool:
        default = str(column.server_default.arg if column.server_default else "").lower()
        return default not in ("true", "1", "'1'")
    if kind is int:
        return 1000 + number
    if kind is datetime:
        moment = MOMENT + timedelta(minutes=number)
        # SQLite's DATETIME keeps no zone: the application stores naive UTC there.
        return moment if dialect == "postgresql" else moment.replace(tzinfo=None)
    if kind is date:
        return date(2026, 3, 29) + timedelta(days=number)
    if kind is time:
        return time(7, number % 60)
    if kind is bytes:
        return b"\x89PNG\r\n\x1a\n\x00\xff" + table.name.encode()
    if kind is str:
        enums = getattr(model_column.type if model_column is not None else None, "enums", None)
        if enums:
            return enums[-1]  # a value the application can read back
        length = getattr(column.type, "length", None) or 200
        return f"{column.name}-{number} åäö"[-length:]
    raise AssertionError(f"no test value for {table.name}.{column.name} ({column.type})")


def _one_row_per_table(conn: Connection) -> dict[str, dict[str, object]]:
    """Insert one row into every table that exists now, every column filled, foreign keys
    pointing at the rows made before; return what was inserted."""
    metadata = MetaData()
    metadata.reflect(conn, only=lambda name, _meta: name != "alembic_version")
    rows: dict[str, dict[str, object]] = {}
    number = 0
    for table in metadata.sorted_tables:
        row: dict[str, object] = {}
        for column in table.columns:
            number += 1
            target = next(iter(column.foreign_keys), None)
            if target is not None:
                row[column.name] = rows[target.column.table.name][target.column.name]
            else:
                row[column.name] = _value(table, column, number, conn.dialect.name)
        conn.execute(table.insert().values(row))
        rows[table.name] = row
    return rows


def _differences_from_models(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    differences = compare_metadata(context, Base.metadata)
    if conn.dialect.name == "sqlite":
        # Known noise: the migrations declare DateTime, which SQLite reflects as DATETIME,
        # while the models' UTCDateTime stores the same naive UTC text there.
        differences = [d for d in differences if not _is_datetime_noise(d)]
    return differences


def _is_datetime_noise(difference: Any) -> bool:
    return isinstance(difference, list) and all(
        op[0] == "modify_type" and isinstance(op[5], DateTime) and isinstance(op[6], UTCDateTime)
        for op in difference
    )


# These cases found a bug, now fixed in migrations/env.py: with SQLite's foreign keys on,
# batch mode's DROP TABLE of the old app_user (0005) and source (0010) failed while rows
# referred to them, so `calendar-app init-db` could not upgrade a database in use.
UPGRADES = [
    pytest.param(backend, revision, id=f"{backend}-{revision}")
    for backend in BACKENDS
    for revision in OLDER_REVISIONS
]


@pytest.mark.parametrize(("empty_database", "revision"), UPGRADES, indirect=["empty_database"])
def test_upgrading_from_an_earlier_revision_keeps_every_row_and_ends_at_the_models(
    empty_database: URL, revision: str
):
    engine = make_engine(empty_database)
    try:
        migrations.upgrade(engine, revision)
        with engine.begin() as conn:
            inserted = _one_row_per_table(conn)
        assert {"person", "provider", "booking", "audit_event"} <= inserted.keys()

        migrations.upgrade(engine)

        head = MetaData()
        with engine.connect() as conn:
            head.reflect(conn)
            for name, row in inserted.items():
                table = head.tables[name]
                kept = [table.columns[c] for c in row]
                found = conn.execute(select(*kept).order_by(*table.primary_key.columns)).all()
                assert [tuple(r) for r in found] == [tuple(row.values())], name
            assert _differences_from_models(conn) == []
        with Session(engine) as session:
            # The application's models read every row that was there before the upgrade.
            for mapper in Base.registry.mappers:
                if mapper.local_table.name in inserted:
                    assert len(session.scalars(select(mapper.class_)).all()) == 1, mapper
    finally:
        engine.dispose()


# --- Backup and restore -------------------------------------------------------------------

PASSWORDS = {name: password for name, (password, _role, _display) in LOGINS.items()}
SOURCE_KEY = "data-safety-source-key"


def _app(url: URL, tmp_path: Path) -> Flask:
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "SECRET_KEY": "test-secret",
            "SOURCE_SECRET_KEY": SOURCE_KEY,
            "WTF_CSRF_ENABLED": False,
        },
        clock=FrozenClock(NOW),
    )
    application.instance_path = str(tmp_path)
    return application


def _close(application: Flask) -> None:
    # The feed renderer's thread may still hold a connection: let it finish first.
    application.extensions["feed_renderer"].stop()
    application.extensions["engine"].dispose()


@dataclass(frozen=True)
class Lived:
    """What a database that has been in use holds, to look for after a restore."""

    person_id: int
    monday: date
    feed_token: str


def _live_a_little(application: Flask, now: datetime) -> Lived:
    """The demo, a feed, reminders in every end state, two synced sources with their sync
    state, and reads by a caregiver and a calendar app, each written as the app does."""
    with application.extensions["session_factory"]() as session:
        load_demo(session, now=now)
        token = demo_feed(session, now=now)
        person = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).one()
        bookings = session.scalars(
            select(Booking).where(Booking.person_id == person.id).order_by(Booking.start_utc)
        ).all()
        states = [
            (ReminderState.PLANNED, "", None),
            (ReminderState.SENT, "", "SM" + "1" * 32),
            (ReminderState.DELIVERED, "", "SM" + "2" * 32),
            (ReminderState.FAILED, "21610", "SM" + "3" * 32),
            (ReminderState.WITHDRAWN, "visit_changed", None),
        ]
        for booking, (state, reason, sid) in zip(bookings[: len(states)], states, strict=True):
            session.add(
                Reminder(
                    person_id=person.id,
                    booking_id=booking.id,
                    occurrence_key=booking.start_utc.isoformat(),
                    visit_start_utc=booking.start_utc,
                    rule_label="1d@18:00",
                    recipient_label="Alva Lindqvist",
                    send_at_utc=booking.start_utc - timedelta(hours=15),
                    state=state,
                    reason=reason,
                    attempts=0 if state == ReminderState.PLANNED else 1,
                    message_sid=sid,
                    body="Påminnelse: besök i morgon kl. 10.00, Sigfridsvägen 9.",
                    segments=1,
                    created_utc=now,
                    changed_utc=now,
                )
            )
        unit = session.scalars(select(Provider).where(Provider.name.startswith("Vårdcentralen")))
        unit_id = unit.one().id
        for name, state, failures in (
            ("Bokningar", SourceState.OK, 0),
            ("Gamla systemet", SourceState.FAILING, 3),
        ):
            session.add(
                Source(
                    provider_id=unit_id,
                    person_id=person.id,
                    name=name,
                    adapter="ics_url",
                    settings='{"display": "kalender.example.se"}',
                    secrets=sealing.seal(
                        {"url": f"https://kalender.example.se/{name}.ics?t=hemlig"}, SOURCE_KEY
                    ),
                    state=state,
                    failures=failures,
                    last_attempt_utc=now - timedelta(minutes=5),
                    last_success_utc=now - timedelta(minutes=5 + 60 * failures),
                    last_error_code="provider.http_503" if failures else "",
                    next_due_utc=now + timedelta(minutes=25),
                    cursor='{"etag": "\\"v42\\""}',
                    created_utc=now - timedelta(days=3),
                    created_by="Karin Berg",
                )
            )
        session.commit()
        person_id = person.id
    monday = now.astimezone(ZONE).date() - timedelta(days=now.astimezone(ZONE).weekday())
    client = application.test_client()
    client.post("/login", data={"username": "karin", "password": PASSWORDS["karin"]})
    assert client.get(f"/people/{person_id}/week?start={monday}").status_code == 200
    assert client.get(f"/feed/{token}.ics").status_code == 200
    return Lived(person_id, monday, token)


def _every_row(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the database, all columns, ordered by primary key."""
    metadata = MetaData()
    with engine.connect() as conn:
        metadata.reflect(conn)
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }


def _assert_the_same_rows(live: Engine, restored: Engine) -> None:
    before, after = _every_row(live), _every_row(restored)
    assert set(before) == {*Base.metadata.tables, "alembic_version"}
    assert set(after) == set(before)
    for name, rows in before.items():
        assert after[name] == rows, f"{name} differs after the restore"
    if live.dialect.name == "postgresql":
        # The next ids continue where the live database's did, so nothing new collides.
        assert _sequence_positions(restored) == _sequence_positions(live)
    # Not a test of nothing: the live database held what a restore must bring back.
    with Session(live) as session:
        states = set(session.scalars(select(Reminder.state)))
        sources = set(session.scalars(select(Source.state)))
    assert {"planned", "sent", "delivered", "failed"} <= states
    assert {"ok", "failing"} <= sources
    assert len(before["booking"]) >= 8 and len(before["audit_event"]) >= 2
    assert before["feed"] and before["photo"] and before["alembic_version"] == [(HEAD,)]


def _sequence_positions(engine: Engine) -> dict[str, int | None]:
    with engine.connect() as conn:
        positions = conn.execute(
            text(
                "SELECT sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = current_schema()"
            )
        )
        found = {name: value for name, value in positions}
    assert found.get("booking_id_seq"), found
    return found


def _assert_the_app_works_on(application: Flask, lived: Lived) -> None:
    """A person logs in and sees her week; her feed answers; audit rows stay append-only;
    a source's secret still opens with the same key."""
    calendar_cache.clear()  # what the live database's app computed must not be shown
    client = application.test_client()
    client.post("/login", data={"username": "alva", "password": PASSWORDS["alva"]})
    week = client.get(f"/people/{lived.person_id}/week?start={lived.monday}")
    assert week.status_code == 200
    page = week.get_data(as_text=True)
    assert "Återbesök, sjuksköterska" in page and "Möte med personligt ombud" in page
    feed = client.get(f"/feed/{lived.feed_token}.ics")
    assert feed.status_code == 200 and b"Provtagning" in feed.data
    engine = application.extensions["engine"]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(update(AuditEvent.__table__).values(detail="changed"))
    with application.extensions["session_factory"]() as session:
        source = session.scalars(select(Source).where(Source.name == "Bokningar")).one()
        assert sealing.unseal(source.secrets, SOURCE_KEY)["url"].endswith("Bokningar.ics?t=hemlig")


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: scripts/ensure-test-env.sh installs PostgreSQL")
        pytest.skip(f"{name} is not installed (postgresql-client)")
    return tool


def _run(*command: str, password: str | None) -> None:
    env = {**os.environ, "PGPASSWORD": password} if password else None
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr}"


def _libpq(url: URL) -> str:
    """The database as pg_dump and pg_restore are given it (the password goes by env)."""
    return URL.create(
        "postgresql", username=url.username, host=url.host, port=url.port, database=url.database
    ).render_as_string()


def _backup_and_restore_postgresql(live: URL, restored: URL, dump: Path) -> None:
    """What docs/backup-restore.md tells the operator to run."""
    _run(_pg_tool("pg_dump"), "-Fc", "-f", str(dump), _libpq(live), password=live.password)
    _run(
        _pg_tool("pg_restore"),
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "-d",
        _libpq(restored),
        str(dump),
        password=restored.password,
    )


def _backup_sqlite(live: URL, copy: URL) -> None:
    """SQLite's online backup, taken while the application is running (WAL mode)."""
    with (
        closing(sqlite3.connect(str(live.database))) as source,
        closing(sqlite3.connect(str(copy.database))) as target,
    ):
        source.backup(target)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backup_restores_every_row_and_the_application_runs_on_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
):
    if backend == "postgresql":
        live_url, restored_url = request.getfixturevalue("pg_databases")
    else:
        live_url = make_url(f"sqlite:///{tmp_path / 'live.sqlite3'}")
        restored_url = make_url(f"sqlite:///{tmp_path / 'restored.sqlite3'}")
    live = _app(live_url, tmp_path)
    try:
        migrations.upgrade(live.extensions["engine"])
        lived = _live_a_little(live, NOW)
        live.extensions["feed_renderer"].stop()  # nothing writes while the backup is made
        if backend == "postgresql":
            _backup_and_restore_postgresql(live_url, restored_url, tmp_path / "live.dump")
        else:
            _backup_sqlite(live_url, restored_url)
        restored = _app(restored_url, tmp_path)
        try:
            _assert_the_same_rows(live.extensions["engine"], restored.extensions["engine"])
            _assert_the_app_works_on(restored, lived)
        finally:
            _close(restored)
    finally:
        _close(live)
