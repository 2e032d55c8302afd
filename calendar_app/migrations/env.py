"""Alembic environment: the engine comes from the caller, the metadata from our models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from calendar_app import models  # noqa: F401  (registers the tables)
from calendar_app.db import Base

config = context.config
engine = config.attributes["engine"]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # Only outside a transaction does SQLite change this (inside, the PRAGMA is ignored),
    # so it goes to the driver's connection, which is in autocommit mode (see db.py).
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=ON" if on else "PRAGMA foreign_keys=OFF")


if engine.dialect.name == "sqlite":
    # A batch migration rebuilds a table (copy, drop, rename); with foreign keys on, the
    # drop fails as soon as other rows point at the table. SQLite's own advice for schema
    # changes: keys off, migrate, check every key, commit, keys on again.
    with engine.connect() as connection:
        _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                _run(connection)
                broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            _sqlite_foreign_keys(connection, on=True)
else:
    with engine.begin() as connection:
        _run(connection)
