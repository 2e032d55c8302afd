"""Timing and throw-away databases shared by the benchmarks."""

from __future__ import annotations

import gc
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from calendar_app.db import make_engine, make_session_factory
from calendar_app.migrations import upgrade
from calendar_app.models import Person

PNR = "199001012385"  # Skatteverket test personnummer


@dataclass
class Samples:
    """Wall-clock times (seconds) of repeated runs of one measurement."""

    name: str
    backend: str
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``function`` once with the garbage collector settled first; (seconds, result)."""
    gc.collect()
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


@dataclass(frozen=True)
class Backend:
    """A database server to run on: SQLite files in a temporary folder, or PostgreSQL."""

    name: str
    url: str | None = None  # the PostgreSQL server (TEST_DATABASE_URL); None for SQLite

    @staticmethod
    def available() -> list[Backend]:
        backends = [Backend("sqlite")]
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            backends.append(Backend("postgresql", url))
        return backends


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


@contextmanager
def fresh_database(backend: Backend) -> Iterator[Database]:
    """A new, empty database migrated with ``upgrade(engine)``; removed afterwards.

    SQLite: a file in a temporary folder (WAL, as the app runs it). PostgreSQL: a schema of
    its own on the server of TEST_DATABASE_URL, dropped at the end, as the tests do.
    """
    if backend.url is None:
        folder = Path(tempfile.mkdtemp(prefix="pk-bench-"))
        engine = make_engine(make_url(f"sqlite:///{folder / 'bench.sqlite3'}"))
        try:
            upgrade(engine)
            yield Database(engine, make_session_factory(engine))
        finally:
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"pk_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(backend.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url: URL = make_url(backend.url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield Database(engine, make_session_factory(engine))
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def add_person(db: Database, now: datetime) -> int:
    """Register the one person whose calendar is measured; return its id."""
    with db.sessions() as session:
        person = Person(personnummer=PNR, name="Alva", timezone="Europe/Stockholm", created_at=now)
        session.add(person)
        session.commit()
        return person.id
