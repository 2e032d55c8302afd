"""A county-like database for the load test, made fresh on every run.

    python -m loadtest.seed [--people 4000] [--out /path/to/users.json]

Drops and recreates its own PostgreSQL database (``calendar_loadtest``), migrates it as
``calendar-app init-db`` does, and fills it fast with bulk inserts (see loadtest/county.py
for what a person's calendar holds): people with a year's bookings from several region and
municipality units, caregivers at each unit with care relationships to their people,
helpers with grants, one calendar feed per person (rendered ahead, as they are once phones
poll them), and an API token for each unit whose own system pushes its bookings. What the
virtual users need (feed URLs with their ETags, user names, the shared password, person
ids, push tokens and pushed booking ids) goes to a JSON file that loadtest/locustfile.py
reads. That file holds secrets of this throw-away database only; it is written outside the
repository, readable by its owner alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from calendar_app.clock import SystemClock
from calendar_app.db import make_engine, make_session_factory
from calendar_app.migrations import upgrade
from calendar_app.models import (
    Booking,
    CareRelationship,
    Feed,
    FeedRender,
    HelperBasis,
    HelperGrant,
    Person,
    PersonTimeWindow,
    Provider,
    Role,
    Source,
    TimeWindowKind,
    User,
    ViewLevel,
)
from calendar_app.providers import ics
from calendar_app.services import feeds, tokens
from calendar_app.services.accounts import hash_password
from calendar_app.services.directory import BUILTIN_SOURCE, PUSH_SOURCE
from loadtest import county
from loadtest.county import UNITS, Ids

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "calendar_loadtest"
# Every load-test account has this password: argon2 takes a good part of a second of CPU a
# hash here, so it is hashed once and the hash shared (logins still verify it in full).
PASSWORD = "loadtest-lösenord-2026"  # noqa: S105 - a throw-away database's accounts
SEED = 20261201
CAREGIVERS_PER_UNIT = 4
HELPER_SHARE = 0.08  # people with a helper (närstående, god man) who has an account
WORK_SHARE = 0.2  # people with work or school on weekday mornings (a hard clash)
PUSHED_SAMPLE = 4000  # pushed booking ids per unit handed to the provider's virtual users
RENDER_PROCESSES = 2  # rendering every feed once is most of the seeding time


def _log(message: str) -> None:
    print(f"[seed] {message}", file=sys.stderr, flush=True)


# --- The database ---------------------------------------------------------------------------


def _admin(server: str) -> Engine:
    return create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")


def recreate_database(server: str, name: str) -> URL:
    """Drop the load test's database if it exists and create it empty; return its URL."""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return make_url(server).set(database=name)


def drop_database(server: str, name: str) -> None:
    """Drop the load test's database (at the end of a run)."""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        admin.dispose()


# --- Inserts --------------------------------------------------------------------------------


def _ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one statement batch; their ids in the same order."""
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def insert_units(session: Session, now: datetime) -> tuple[list[int], dict[tuple[int, str], int]]:
    """The units and their sources: a shared file source, the built-in one for bookings
    made here, and the push source of units whose own system pushes."""
    providers = _ids(
        session,
        Provider,
        [
            {"name": u.name, "kind": u.kind, "phone": "0470-58 60 00", "address": u.location}
            | {"contact_name": "Kontaktperson"}
            for u in UNITS
        ],
    )
    wanted = [
        (index, name, adapter)
        for index, unit in enumerate(UNITS)
        for name, adapter in (
            ("file", ics.ADAPTER),
            (BUILTIN_SOURCE, "native"),
            *([(PUSH_SOURCE, PUSH_SOURCE)] if unit.pushes else []),
        )
    ]
    made = _ids(
        session,
        Source,
        [
            {"provider_id": providers[index], "name": name, "adapter": adapter}
            | {"created_utc": now - timedelta(days=400), "created_by": "loadtest"}
            for index, name, adapter in wanted
        ],
    )
    return providers, {(i, name): sid for (i, name, _), sid in zip(wanted, made, strict=True)}


def insert_accounts(
    session: Session,
    rng: random.Random,
    now: datetime,
    people: county.People,
    person_ids: list[int],
    providers: list[int],
) -> tuple[dict[int, list[int]], list[int]]:
    """Caregivers per unit, one account per person, helpers with grants, work hours, care
    relationships; every account with the one shared password hash. Returns the
    caregivers' user ids by unit and the people who have a helper."""
    shared = hash_password(PASSWORD)
    caregivers: dict[int, list[int]] = defaultdict(list)
    for index, provider_id in enumerate(providers):
        caregivers[index] = _ids(
            session,
            User,
            [
                {"username": f"vard{index:02d}-{n}", "display_name": county.a_name(rng)}
                | {"password_hash": shared, "role": Role.CAREGIVER, "provider_id": provider_id}
                for n in range(CAREGIVERS_PER_UNIT)
            ],
        )
    session.execute(
        insert(User),
        [
            {"username": f"person{index:05d}", "display_name": people.rows[index]["name"]}
            | {"password_hash": shared, "role": Role.PERSON, "person_id": person_id}
            for index, person_id in enumerate(person_ids)
        ],
    )
    helped = [pid for pid in person_ids if rng.random() < HELPER_SHARE]
    helpers = _ids(
        session,
        User,
        [
            {"username": f"helper{index:05d}", "display_name": county.a_name(rng)}
            | {"password_hash": shared, "role": Role.HELPER}
            for index in range(len(helped))
        ],
    )
    session.execute(
        insert(HelperGrant),
        [
            {"person_id": person_id, "helper_user_id": helper_id, "helper_name": "Närstående"}
            | {"view_level": ViewLevel.FULL, "receives_reminders": rng.random() < 0.5}
            | {"basis": HelperBasis.RELATIVE, "granted_utc": now - timedelta(days=200)}
            for person_id, helper_id in zip(helped, helpers, strict=True)
        ],
    )
    session.execute(
        insert(PersonTimeWindow),
        [
            {"person_id": person_id, "kind": TimeWindowKind.BUSY, "label": "Arbete"}
            | {"weekdays": "0,1,2,3,4", "start_time": clock(8), "end_time": clock(12)}
            for person_id in person_ids
            if rng.random() < WORK_SHARE
        ],
    )
    session.execute(
        insert(CareRelationship),
        [
            {"person_id": person_id, "provider_id": providers[unit], "created_by": "source"}
            | {"started_utc": now - timedelta(days=400)}
            for person_id, units in zip(person_ids, people.units_of, strict=True)
            for unit in units
        ],
    )
    return caregivers, helped


def insert_bookings(
    session: Session,
    rng: random.Random,
    now: datetime,
    people: county.People,
    person_ids: list[int],
    ids: Ids,
) -> tuple[int, dict[int, list[dict[str, str]]]]:
    """Every person's bookings in batches; returns their number and the pushed ones."""
    pushed: dict[int, list[dict[str, str]]] = defaultdict(list)
    total = 0
    batch: list[dict[str, Any]] = []
    for person_id, row, units in zip(person_ids, people.rows, people.units_of, strict=True):
        batch += county.bookings(rng, now, person_id, row["personnummer"], units, ids, pushed)
        if len(batch) >= 20000:
            session.execute(insert(Booking), batch)
            total, batch = total + len(batch), []
    if batch:
        session.execute(insert(Booking), batch)
        total += len(batch)
    return total, pushed


def insert_feeds(session: Session, now: datetime, person_ids: list[int]) -> list[str]:
    """One feed per person (level full), its token hashed exactly as services/feeds.py
    does; checked by finding the first through the app's own lookup. Returns the tokens."""
    made = [secrets.token_urlsafe(32) for _ in person_ids]
    session.execute(
        insert(Feed),
        [
            {"person_id": person_id, "token_hash": hashlib.sha256(token.encode()).hexdigest()}
            | {"label": "Personkalendern", "level": ViewLevel.FULL, "locale": "sv"}
            | {"created_utc": now - timedelta(days=100), "created_by": "loadtest"}
            | {"created_role": "operator"}
            for person_id, token in zip(person_ids, made, strict=True)
        ],
    )
    session.commit()
    probe = feeds.find_feed(session, made[0], now=now)
    session.rollback()
    if probe is None or probe.person_id != person_ids[0]:
        raise SystemExit("a seeded feed token is not found by services.feeds.find_feed")
    return made


# --- Rendering every feed once (in a few processes) -----------------------------------------

_RENDER_FACTORY: list[sessionmaker[Session]] = []


def _render_worker(url: str) -> None:
    _RENDER_FACTORY.append(make_session_factory(make_engine(make_url(url))))


def _render_chunk(people: Sequence[int]) -> float:
    """Render the feeds of ``people`` with the app's own code; return the CPU seconds."""
    started = time.process_time()
    feeds.refresh_feeds(_RENDER_FACTORY[0], people, now=SystemClock().now())
    return time.process_time() - started


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def render_feeds(engine: Engine, person_ids: list[int]) -> float:
    """Render and store every feed as a phone's first poll would; the app's CPU seconds."""
    url = engine.url.render_as_string(hide_password=False)
    # Spawned, not forked: a forked child would share the parent's database connections.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        RENDER_PROCESSES, mp_context=spawn, initializer=_render_worker, initargs=(url,)
    ) as pool:
        return sum(pool.map(_render_chunk, _chunks(person_ids, 200)))


# --- The whole ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What the virtual users need, and what the report says about the data set."""

    users: dict[str, Any]
    facts: dict[str, Any]


def seed(engine: Engine, count: int, *, base_url: str) -> Seeded:
    """Fill the freshly migrated database; return the users' file and a summary."""
    rng = random.Random(SEED)
    now = SystemClock().now()  # the load test's server runs on the system clock
    started = mark = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal mark
        timings[name] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()

    people = county.people(count, rng, now)
    with Session(engine) as session:
        providers, sources = insert_units(session, now)
        person_ids = _ids(session, Person, people.rows)
        caregivers, helped = insert_accounts(session, rng, now, people, person_ids, providers)
        session.commit()
        lap("people, accounts, units")
        ids = Ids(providers, sources, caregivers)
        total, pushed = insert_bookings(session, rng, now, people, person_ids, ids)
        session.commit()
        lap("bookings")
        feed_tokens = insert_feeds(session, now, person_ids)
        push_tokens = {
            index: tokens.create_token(
                session,
                name=f"{unit.name} bokningssystem",
                provider_id=providers[index],
                scopes=["bookings:push"],
                created_by="loadtest",
                now=now,
            ).secret
            for index, unit in enumerate(UNITS)
            if unit.pushes
        }
        lap("feeds and tokens")
    _log(f"rendering {count} feeds ahead in {RENDER_PROCESSES} processes")
    render_cpu = render_feeds(engine, person_ids)
    lap("feed renders")
    with Session(engine) as session:
        session.execute(text("ANALYZE"))
        rendered = select(Feed.person_id, FeedRender.etag).join(
            FeedRender, FeedRender.feed_id == Feed.id
        )
        etag_of = {row.person_id: row.etag for row in session.execute(rendered)}
        size = session.scalar(text("SELECT pg_database_size(current_database())"))
        series = session.scalar(
            select(func.count()).select_from(Booking).where(Booking.recurrence_ics.is_not(None))
        )
        session.commit()
    if len(etag_of) != count:
        raise SystemExit(f"only {len(etag_of)} of {count} feeds were rendered")

    people_of: dict[int, list[int]] = defaultdict(list)
    pnr_of: dict[int, list[list[Any]]] = defaultdict(list)
    for person_id, row, units in zip(person_ids, people.rows, people.units_of, strict=True):
        for unit in units:
            people_of[unit].append(person_id)
            pnr_of[unit].append([row["personnummer"], person_id])
    users = {
        "base_url": base_url,
        "password": PASSWORD,
        "people": [[pid, f"person{index:05d}"] for index, pid in enumerate(person_ids)],
        "helpers": [[f"helper{index:05d}", person_id] for index, person_id in enumerate(helped)],
        "units": [
            {
                "name": unit.name,
                "people": people_of[index],
                "caregivers": [f"vard{index:02d}-{n}" for n in range(CAREGIVERS_PER_UNIT)],
            }
            for index, unit in enumerate(UNITS)
        ],
        # The gzip representation's tag: phones ask with Accept-Encoding: gzip.
        "feeds": [
            [feeds.feed_path(token), f'"{etag_of[person_id]}-gzip"']
            for token, person_id in zip(feed_tokens, person_ids, strict=True)
        ],
        "pushers": [
            {
                "unit": UNITS[index].name,
                "token": secret,
                "people": pnr_of[index],
                "bookings": rng.sample(pushed[index], min(PUSHED_SAMPLE, len(pushed[index]))),
            }
            for index, secret in push_tokens.items()
        ],
    }
    facts = {
        "people": count,
        "units": len(UNITS),
        "bookings": total,
        "series": int(series or 0),
        "care_relationships": sum(len(u) for u in people.units_of),
        "caregivers": sum(len(v) for v in caregivers.values()),
        "helpers": len(helped),
        "feeds": len(feed_tokens),
        "pushing_units": len(push_tokens),
        "pushed_future": {UNITS[i].name: len(v) for i, v in pushed.items()},
        "database_bytes": int(size or 0),
        # The app's CPU per feed render (PostgreSQL's share not counted).
        "render_cpu_ms_per_feed": round(1000 * render_cpu / max(1, count), 1),
        "seconds": timings,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    return Seeded(users=users, facts=facts)


def write_users(users: dict[str, Any], path: Path) -> None:
    """The virtual users' file, readable by its owner only (it holds this run's secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(users, out, ensure_ascii=False)


def main(argv: list[str] | None = None) -> None:
    """Recreate, migrate and fill the load test's database; write the users' file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument(
        "--server",
        default=os.environ.get("LOADTEST_DATABASE_SERVER", DEFAULT_SERVER),
        help="a URL of any database on the PostgreSQL server to use",
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "personkalendern-loadtest.json"
    )
    args = parser.parse_args(argv)
    url = recreate_database(args.server, DATABASE)
    engine = make_engine(url)
    try:
        upgrade(engine)
        seeded = seed(engine, args.people, base_url=args.base_url)
    finally:
        engine.dispose()
    write_users(seeded.users, args.out)
    print(json.dumps(seeded.facts, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
