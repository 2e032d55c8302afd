"""Calendar feed benchmark of DESIGN §7 (issue 10): a person with 1,000 bookings.

Side by side in one run, interleaved round by round:

1. *precomputed*: the feed's bytes served by a trivial WSGI app (``bench.static_feed_app``)
   under gunicorn: the floor for serving these bytes over HTTP;
2. *request after a change*: one visit of the person is moved (a re-import of the dental
   clinic's file through ``import_ics_file``); the commit has the feed rendered again and
   stored on a background thread (``keep_feeds_current``), which is waited for; then one
   GET of the feed URL from the app under gunicorn is timed, gzip accepted as calendar
   apps do. Target: ≤ 3× (1) serving the same gzip bytes. The same pair without gzip is
   measured too;
3. *304*: a GET with ``If-None-Match`` of the current ETag. Target: (4) / (3) ≥ 10;
   beside it ``GET /healthz``, the app's floor (Flask, its hooks, one ``SELECT 1``);
4. *cold render*: ``render_feed`` in-process, in a new session, the merged-calendar cache
   emptied first. Target: ≤ 1.5× (5);
5. *icalendar*: the same events built directly with icalendar (Calendar + Event objects
   with the properties the feed writes, VTIMEZONE by ``add_missing_timezones``) from plain
   Python values prepared beforehand, and ``to_ical()``;
6. *Radicale*: a real Radicale serving the same events (one object per event) answers a
   GET of the calendar collection: the anchor (it has no 304).

    make bench          # or: python -m bench.feed_bench [--rounds N] [--no-doc] [--profile]

PostgreSQL is measured too when TEST_DATABASE_URL is set (a throw-away schema is used).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gzip
import http.client
import os
import pstats
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import func, select

from bench.data import STOCKHOLM, VTIMEZONE, care_bookings, fold
from bench.harness import Backend, Database, Samples, add_person, fresh_database, timed
from bench.report import write_doc
from calendar_app.clock import SystemClock
from calendar_app.domain import feed as feed_format
from calendar_app.models import AuditEvent, Booking, BookingStatus, FeedRender, Person, ProviderKind
from calendar_app.services.access import Actor
from calendar_app.services.calendar import CACHE
from calendar_app.services.feed_render import render_feed
from calendar_app.services.feeds import create_feed, feed_path, keep_feeds_current
from calendar_app.services.imports import import_ics_file

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START, END = "<!-- bench:feeds:start -->", "<!-- bench:feeds:end -->"
HEADING = "Calendar feeds: a request after a change, 304, cold render"
ZONE = ZoneInfo("Europe/Stockholm")
MAX_BYTES = 10 * 1024 * 1024
SEED = 20261000
WARM_UP = 1
# Targets of the issue.
AFTER_CHANGE_MAX = 3.0  # request after a change / precomputed
NOT_MODIFIED_MIN = 10.0  # cold render / 304
COLD_MAX = 1.5  # cold render / icalendar's own serialization
# The person's 1,000 bookings: two units with files of their own, and the dental clinic
# whose small file is imported again, with one visit moved, for every change measured.
UNITS = (
    ("Region Kronoberg", ProviderKind.REGION, "region", 700),
    ("Växjö kommun, hemsjukvård", ProviderKind.MUNICIPALITY, "kommun", 280),
)
DENTAL = ("Folktandvården Centrum Växjö", ProviderKind.REGION)
DENTAL_VISITS = 20
MOVED = 8  # the dental visit that moves (about six weeks ahead)
USER, PASSWORD = "alva", "hemligt"  # Radicale's one user


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Data --------------------------------------------------------------------------------


def dental_file(change: int, today: date) -> bytes:
    """The dental clinic's 20 visits, six weeks apart from ten months back; change number
    ``change`` puts visit MOVED at another time of its day, so each import moves one visit."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Folktandvården Kronoberg//Bokning//SV",
        "METHOD:PUBLISH",
        *VTIMEZONE,
    ]
    first = today - timedelta(weeks=42)
    for index in range(DENTAL_VISITS):
        day = first + timedelta(weeks=6 * index)
        if day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())
        minutes = 8 * 60 + (change % 24) * 15 if index == MOVED else (9 + index % 5) * 60
        start = datetime.combine(day, clock(minutes // 60, minutes % 60), tzinfo=STOCKHOLM)
        end = start + timedelta(minutes=45 if index % 3 else 60)
        body = [
            f"UID:ftv-{index:04d}@folktandvarden.example.se",
            "DTSTAMP:20260101T080000Z",
            f"DTSTART;TZID=Europe/Stockholm:{start:%Y%m%dT%H%M%S}",
            f"DTEND;TZID=Europe/Stockholm:{end:%Y%m%dT%H%M%S}",
            "SUMMARY:" + ("Tandhygienist" if index % 2 else "Undersökning\\, tandläkare"),
            "LOCATION:Folktandvården Centrum\\, Storgatan 12\\, 352 31 Växjö",
            "DESCRIPTION:Kom fem minuter före utsatt tid.\\nAvbokning senast 24 timmar "
            "innan\\, annars debiteras en avgift.",
            "ORGANIZER;CN=Folktandvården Centrum:mailto:centrum@folktandvarden.example.se",
            "STATUS:CONFIRMED",
        ]
        if index == MOVED:
            body.append(f"SEQUENCE:{change}")
        lines.append("BEGIN:VEVENT")
        for line in body:
            lines.extend(fold(line))
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def change_visit(db: Database, person_id: int, change: int) -> None:
    """Move one dental visit through the import; the commit has the feed rendered again."""
    now = datetime.now(UTC)
    with db.sessions() as session:
        summary = import_ics_file(
            session,
            person_id=person_id,
            provider_name=DENTAL[0],
            provider_kind=DENTAL[1],
            source_name="fil",
            data=dental_file(change, now.astimezone(ZONE).date()),
            now=now,
            max_bytes=MAX_BYTES,
        )
    if change and summary.updated != 1:
        raise SystemExit(f"change {change} did not move one visit: {summary.line()}")


@dataclass
class Loaded:
    person_id: int
    bookings: int
    series: int
    cancelled: int


def load(db: Database, now: datetime) -> Loaded:
    """The person and their 1,000 bookings, from a year back to two years ahead."""
    person_id = add_person(db, now)
    today = now.astimezone(ZONE).date()
    for index, (name, kind, prefix, count) in enumerate(UNITS):
        generated = care_bookings(
            count,
            seed=SEED + index,
            first_day=today - timedelta(days=330),
            days=1020,
            series_share=0.01,
            uid_prefix=prefix,
        )
        with db.sessions() as session:
            summary = import_ics_file(
                session,
                person_id=person_id,
                provider_name=name,
                provider_kind=kind,
                source_name="fil",
                data=generated.data,
                now=now,
                max_bytes=MAX_BYTES,
            )
        if summary.added != count or summary.skipped:
            raise SystemExit(f"unexpected import for the feed benchmark: {summary.line()}")
    change_visit(db, person_id, 0)
    with db.sessions() as session:

        def total(*where: Any) -> int:
            query = select(func.count()).select_from(Booking).where(*where)
            return int(session.scalar(query) or 0)

        return Loaded(
            person_id=person_id,
            bookings=total(),
            series=total(Booking.recurrence_ics.is_not(None), Booking.recurrence_key == ""),
            cancelled=total(Booking.status == BookingStatus.CANCELLED),
        )


# --- Servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(process: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    ends = time.monotonic() + 30
    while time.monotonic() < ends:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start in time:\n{log.read_text()[-2000:]}")


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[int]:
    """Run a server as a subprocess until the block ends; yield its port."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(process, port, log, command[0])
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gunicorn(app: str, env: dict[str, str], log: Path) -> Any:
    """One sync worker, as ``gunicorn -w 1 -b 127.0.0.1:PORT APP``."""
    port = free_port()
    command = [str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", app]
    return server(command, env, port, log)


def radicale(folder: Path) -> Any:
    """Radicale as the tests start it (htpasswd, one user, files under ``folder``)."""
    port = free_port()
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    config = folder / "config"
    config.write_text(
        "\n".join(
            [
                "[server]",
                f"hosts = 127.0.0.1:{port}",
                "[auth]",
                "type = htpasswd",
                f"htpasswd_filename = {users}",
                "htpasswd_encryption = plain",
                "delay = 0",
                "[rights]",
                "type = owner_only",
                "[storage]",
                f"filesystem_folder = {folder / 'collections'}",
                "[web]",
                "type = none",
                "[logging]",
                "level = warning",
                "",
            ]
        )
    )
    command = [sys.executable, "-m", "radicale", "--config", str(config)]
    return server(command, {}, port, folder / "radicale.log")


class Client:
    """A plain HTTP/1.1 client on one connection, kept open as long as the server lets it
    (gunicorn's sync worker closes it after each answer; the client then connects again)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = headers or {}

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.connection.request(
            method, path, body=body or None, headers={**self.headers, **(headers or {})}
        )
        response = self.connection.getresponse()
        data = response.read()
        if response.will_close:
            self.connection.close()
        return response.status, response.headers, data

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        status, answer, data = self.request("GET", path, headers)
        return status, answer.get("ETag", ""), data

    def close(self) -> None:
        self.connection.close()


@dataclass
class Anchor:
    """The running Radicale: a client with the user's credentials, and the path of the
    calendar holding the feed's events once they are put there."""

    client: Client
    path: str = ""
    backend: str = ""  # measured in the rounds of this backend only: it needs no database

    def load(self, body: bytes) -> None:
        """Put the feed's events into a new calendar collection in one PUT; Radicale
        stores each event as an object of its own (with the VTIMEZONE), as if each had
        been PUT on its own."""
        path = f"/{USER}/feed/"
        status, _, _ = self.client.request(
            "PUT", path, {"Content-Type": "text/calendar; charset=utf-8"}, body
        )
        if status not in (201, 204):
            raise SystemExit(f"Radicale refused the calendar: {status}")
        self.path = path


# --- icalendar's own serialization ----------------------------------------------------


@dataclass(frozen=True)
class PlainEvent:
    """One event of the feed as plain Python values."""

    uid: str
    stamp: datetime
    modified: datetime
    sequence: int
    start: datetime | date
    end: datetime | date
    summary: str
    location: str | None
    description: str | None
    status: str
    transp: str
    klass: str


@dataclass(frozen=True)
class PlainCalendar:
    name: str
    events: list[PlainEvent]
    first: date
    last: date


def plain_events(body: bytes) -> PlainCalendar:
    """The feed's events as plain values (parsed once with icalendar, outside the timing)."""
    parsed = icalendar.Calendar.from_ical(body)

    def local(value: datetime | date) -> datetime | date:
        if isinstance(value, datetime):
            return value.astimezone(ZONE)
        return value

    def text(event: icalendar.Component, name: str) -> str | None:
        value = event.get(name)
        return None if value is None else str(value)

    events = []
    for event in parsed.walk("VEVENT"):
        events.append(
            PlainEvent(
                uid=str(event["UID"]),
                stamp=event.decoded("DTSTAMP"),
                modified=event.decoded("LAST-MODIFIED"),
                sequence=int(event.decoded("SEQUENCE")),
                start=local(event.decoded("DTSTART")),
                end=local(event.decoded("DTEND")),
                summary=str(event["SUMMARY"]),
                location=text(event, "LOCATION"),
                description=text(event, "DESCRIPTION"),
                status=str(event["STATUS"]),
                transp=str(event["TRANSP"]),
                klass=str(event["CLASS"]),
            )
        )
    first = min(e.start.date() if isinstance(e.start, datetime) else e.start for e in events)
    last = max(e.end.date() if isinstance(e.end, datetime) else e.end for e in events)
    return PlainCalendar(name=str(parsed["X-WR-CALNAME"]), events=events, first=first, last=last)


def icalendar_serialize(plain: PlainCalendar) -> bytes:
    """Build the calendar with icalendar's own objects and serialize it (what is timed)."""
    ical = icalendar.Calendar()
    ical.add("PRODID", feed_format.PRODID)
    ical.add("VERSION", "2.0")
    ical.add("CALSCALE", "GREGORIAN")
    ical.add("NAME", plain.name)
    ical.add("X-WR-CALNAME", plain.name)
    ical.add("X-WR-TIMEZONE", ZONE.key)
    ical.add("REFRESH-INTERVAL", feed_format.REFRESH, parameters={"VALUE": "DURATION"})
    ical.add("X-PUBLISHED-TTL", "PT1H")
    for item in plain.events:
        event = icalendar.Event()
        event.add("UID", item.uid)
        event.add("DTSTAMP", item.stamp)
        event.add("LAST-MODIFIED", item.modified)
        event.add("SEQUENCE", item.sequence)
        event.add("DTSTART", item.start)
        event.add("DTEND", item.end)
        event.add("SUMMARY", item.summary)
        if item.location is not None:
            event.add("LOCATION", item.location)
        if item.description is not None:
            event.add("DESCRIPTION", item.description)
        event.add("STATUS", item.status)
        event.add("TRANSP", item.transp)
        event.add("CLASS", item.klass)
        ical.add_component(event)
    ical.add_missing_timezones(plain.first - timedelta(days=1), plain.last + timedelta(days=1))
    return ical.to_ical()


# --- Measuring ---------------------------------------------------------------------------


@dataclass
class FeedFigures:
    backend: str
    loaded: Loaded
    feed_bytes: int = 0
    gzip_bytes: int = 0
    vevents: int = 0
    same_bytes: bool = False  # icalendar's serialization gave exactly the feed's bytes
    audited: int = 0  # feed.fetch audit rows written
    fetches: int = 0  # GETs of the app's feed URL
    samples: dict[str, Samples] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return self.samples[name].median

    def ratio(self, a: str, b: str) -> float:
        return self.median(a) / self.median(b)


NAMES = (
    "precomputed",
    "after_change",
    "precomputed_plain",
    "plain",
    "not_modified",
    "floor",
    "cold",
    "icalendar",
    "radicale",
    "commit",
    "change",
)


def _stored_version(db: Database, person_id: int, feed_id: int) -> tuple[int, str | None]:
    with db.sessions() as session:
        version = session.scalar(select(Person.calendar_version).where(Person.id == person_id))
        key = session.scalar(select(FeedRender.render_key).where(FeedRender.feed_id == feed_id))
        session.rollback()
    return int(version or 0), key


def wait_for_render(db: Database, person_id: int, feed_id: int) -> None:
    """Until the feed's stored render is of the person's current calendar version: the
    commit of a change hands the render to a background thread (``keep_feeds_current``)."""
    ends = time.monotonic() + 60
    while True:
        version, key = _stored_version(db, person_id, feed_id)
        if key is not None and key.split(":")[1] == str(version):
            return
        if time.monotonic() > ends:
            raise SystemExit(f"the feed was not rendered ahead (version {version}, key {key})")
        time.sleep(0.01)


GZIP = {"Accept-Encoding": "gzip"}  # as calendar apps ask


def measure(backend: Backend, rounds: int, anchor: Anchor, log: Path) -> FeedFigures:
    now = datetime.now(UTC)
    started = time.perf_counter()
    with fresh_database(backend) as db:
        keep_feeds_current(db.sessions, SystemClock())  # as create_app does for the web workers
        loaded = load(db, now)
        _log(
            f"{backend.name}: {loaded.bookings:,} bookings in {time.perf_counter() - started:.0f} s"
        )
        figures = FeedFigures(backend.name, loaded)
        figures.samples = {name: Samples(name, backend.name) for name in NAMES}
        with db.sessions() as session:
            feed = create_feed(session, Actor.operator(), loaded.person_id, level="full", now=now)
        path = feed_path(feed.token)
        env = {
            "CALENDAR_APP_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "CALENDAR_APP_SECRET_KEY": secrets.token_hex(32),
            "CALENDAR_APP_SCHEDULER": "off",
        }
        with gunicorn("calendar_app:create_app()", env, log / f"app-{backend.name}.log") as port:
            app = Client(port)
            status, etag, packed = app.get(path, GZIP)  # the first fetch renders and stores
            _, _, body = app.get(path)
            figures.fetches += 2
            if status != 200 or not packed or gzip.decompress(packed) != body:
                raise SystemExit(f"{backend.name}: the feed answered {status}")
            figures.feed_bytes, figures.gzip_bytes = len(body), len(packed)
            figures.vevents = body.count(b"BEGIN:VEVENT")
            if not anchor.path:
                anchor.load(body)
                anchor.backend = backend.name
            plain = plain_events(body)
            figures.same_bytes = icalendar_serialize(plain) == body
            stored = log / f"feed-{backend.name}.ics"
            stored.write_bytes(body)
            stored_gzip = log / f"feed-{backend.name}.ics.gz"
            stored_gzip.write_bytes(packed)
            static_env = {
                "PK_BENCH_FEED_FILE": str(stored),
                "PK_BENCH_FEED_GZIP_FILE": str(stored_gzip),
            }
            static_log = log / f"static-{backend.name}.log"
            with gunicorn("bench.static_feed_app:app", static_env, static_log) as static_port:
                static = Client(static_port)
                _log(f"{backend.name}: servers ready; {WARM_UP} + {rounds} rounds")
                for number in range(WARM_UP + rounds):
                    etag = _round(
                        db, figures, feed.id, path, app, static, anchor, plain, etag, number + 1
                    )
                    if number < WARM_UP:
                        for samples in figures.samples.values():
                            samples.times.clear()
                static.close()
            app.close()
        with db.sessions() as session:
            figures.audited = int(
                session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "feed.fetch")
                )
                or 0
            )
    return figures


def _round(
    db: Database,
    figures: FeedFigures,
    feed_id: int,
    path: str,
    app: Client,
    static: Client,
    anchor: Anchor,
    plain: PlainCalendar,
    etag: str,
    change: int,
) -> str:
    """One round of every measurement; returns the feed's ETag after it."""
    person_id = figures.loaded.person_id
    times: dict[str, float] = {}
    # (2) a change commits; its render is made and stored on a background thread; then one
    # GET, as a calendar app asks (gzip), is timed
    start = time.perf_counter()
    change_visit(db, person_id, change)
    times["commit"] = time.perf_counter() - start
    wait_for_render(db, person_id, feed_id)
    times["change"] = time.perf_counter() - start
    times["after_change"], (status, new_etag, packed) = timed(lambda: app.get(path, GZIP))
    if status != 200 or new_etag == etag or not packed:
        raise SystemExit(f"after a change: {status}, ETag {new_etag} (was {etag})")
    # (1) the same bytes, precomputed
    times["precomputed"], (status, _, static_body) = timed(lambda: static.get("/", GZIP))
    if status != 200 or len(static_body) != figures.gzip_bytes:
        raise SystemExit(f"precomputed: {status}, {len(static_body)} bytes")
    # the same two for a client that takes no gzip (the app unpacks the stored bytes)
    times["plain"], (status, _, body) = timed(lambda: app.get(path))
    if status != 200 or body != gzip.decompress(packed):
        raise SystemExit(f"plain: {status}, {len(body)} bytes")
    times["precomputed_plain"], (status, _, static_body) = timed(lambda: static.get("/"))
    if status != 200 or len(static_body) != figures.feed_bytes:
        raise SystemExit(f"precomputed, plain: {status}, {len(static_body)} bytes")
    # (3) a fetch of the unchanged feed by a calendar app that has it
    times["not_modified"], (status, _, _) = timed(
        lambda: app.get(path, {**GZIP, "If-None-Match": new_etag})
    )
    if status != 304:
        raise SystemExit(f"If-None-Match of the current ETag answered {status}")
    figures.fetches += 3
    # the app's own floor: Flask, its hooks and one database round trip, no feed
    times["floor"], (status, _, _) = timed(lambda: app.get("/healthz"))
    if status != 200:
        raise SystemExit(f"/healthz answered {status}")
    # (4) the cold render, in a new session, the merged-calendar cache emptied
    CACHE.clear()
    with db.sessions() as session:
        times["cold"], rendered = timed(
            lambda: render_feed(session, feed_id, now=datetime.now(UTC))
        )
    if rendered != body:
        raise SystemExit("the cold render differs from the bytes served after the change")
    # (5) icalendar's own serialization of the same events
    times["icalendar"], serialized = timed(lambda: icalendar_serialize(plain))
    if serialized.count(b"BEGIN:VEVENT") != figures.vevents:
        raise SystemExit("icalendar's serialization lost events")
    # (6) the anchor: Radicale serving the same events
    if anchor.backend == figures.backend:
        times["radicale"], (status, _, answer) = timed(lambda: anchor.client.get(anchor.path))
        if status != 200 or answer.count(b"BEGIN:VEVENT") != figures.vevents:
            found = answer.count(b"BEGIN:VEVENT")
            raise SystemExit(f"Radicale answered {status} with {found} events")
    for name, seconds in times.items():
        figures.samples[name].times.append(seconds)
    return new_etag


def profile(backend: Backend) -> None:
    """Where the time goes (cProfile, cumulative), printed: a cold render, and the feed
    request after a change run in-process through Flask's test client (no gunicorn)."""
    from calendar_app import create_app

    now = datetime.now(UTC)
    with fresh_database(backend) as db:
        keep_feeds_current(db.sessions, SystemClock())
        loaded = load(db, now)
        with db.sessions() as session:
            feed = create_feed(session, Actor.operator(), loaded.person_id, level="full", now=now)
        for _ in range(2):
            CACHE.clear()
            with db.sessions() as session:
                render_feed(session, feed.id, now=now)
        CACHE.clear()
        profiler = cProfile.Profile()
        with db.sessions() as session:
            profiler.runcall(render_feed, session, feed.id, now=now)
        print(f"== {backend.name}: cold render (render_feed) ==")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        url = db.engine.url.render_as_string(hide_password=False)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secrets.token_hex(16)})
        client = app.test_client()
        path = feed_path(feed.token)
        for _ in range(3):
            client.get(path, headers=GZIP)
        profiler = cProfile.Profile()
        for change in range(1, 21):
            change_visit(db, loaded.person_id, change)
            wait_for_render(db, loaded.person_id, feed.id)
            profiler.runcall(client.get, path, headers=GZIP)
        print(f"== {backend.name}: 20 feed requests (gzip), each after a change (test client) ==")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


# --- Report ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def table(results: list[FeedFigures]) -> tuple[list[str], list[str]]:
    """The markdown rows and the plain verdicts."""
    lines = [
        "| measurement | backend | runs | median | min | max | target | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for f in results:

        def row(
            name: str, label: str, target: str = "", result: str = "", f: FeedFigures = f
        ) -> str:
            x = f.samples[name]
            return (
                f"| {label} | {f.backend} | {len(x.times)} | {_ms(x.median)} | {_ms(x.low)} | "
                f"{_ms(x.high)} | {target} | {result} |"
            )

        after = f.ratio("after_change", "precomputed")
        unpacked = f.ratio("plain", "precomputed_plain")
        fast = f.ratio("cold", "not_modified")
        cold = f.ratio("cold", "icalendar")
        met = {
            "after": after <= AFTER_CHANGE_MAX,
            "304": fast >= NOT_MODIFIED_MIN,
            "cold": cold <= COLD_MAX,
        }

        def word(ok: bool) -> str:
            return "met" if ok else "**missed**"

        lines += [
            row("precomputed", "same bytes precomputed, gzip (static WSGI app, gunicorn)"),
            row(
                "after_change",
                "feed GET after a change, gzip (gunicorn)",
                f"≤ {AFTER_CHANGE_MAX:g}× precomputed",
                f"{word(met['after'])} ({after:.2f}×)",
            ),
            row("precomputed_plain", "same bytes precomputed, no gzip"),
            row(
                "plain", "feed GET, no gzip (the app unpacks)", "", f"({unpacked:.2f}× precomputed)"
            ),
            row(
                "not_modified",
                "feed GET, 304 (If-None-Match)",
                f"cold ≥ {NOT_MODIFIED_MIN:g}× this",
                f"{word(met['304'])} ({fast:.0f}×)",
            ),
            row("floor", "the app's floor: GET /healthz (Flask, `SELECT 1`)"),
            row(
                "cold",
                "cold render (`render_feed`, in-process)",
                f"≤ {COLD_MAX:g}× icalendar",
                f"{word(met['cold'])} ({cold:.2f}×)",
            ),
            row("icalendar", "icalendar builds and serializes the same events"),
            row("commit", "the change's commit (20-visit import, in-process)"),
            row("change", "the change until its render is stored (background thread)"),
        ]
        if f.samples["radicale"].times:
            lines.insert(
                -2,
                row(
                    "radicale",
                    "Radicale GET of the same events (anchor, no 304)",
                    "",
                    f"({f.ratio('radicale', 'after_change'):.0f}× the feed after a change)",
                ),
            )
        verdicts += [
            f"Request after a change on {f.backend}: {word(met['after'])}, "
            f"{after:.2f}× serving the same bytes precomputed (target ≤ {AFTER_CHANGE_MAX:g}×).",
            f"304 on {f.backend}: {word(met['304'])}, {fast:.0f}× faster than a cold render "
            f"(target ≥ {NOT_MODIFIED_MIN:g}×).",
            f"Cold render on {f.backend}: {word(met['cold'])}, {cold:.2f}× icalendar's own "
            f"serialization of the same events (target ≤ {COLD_MAX:g}×).",
        ]
    return lines, verdicts


def section(results: list[FeedFigures], rounds: int) -> str:
    lines, verdicts = table(results)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_avg = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    out = [
        START,
        "",
        f"Measured {stamp}, same machine; gunicorn {_version('gunicorn')} (one sync worker), "
        f"Radicale {_version('radicale')}, icalendar {_version('icalendar')}. "
        f"{rounds} rounds after {WARM_UP} not counted; load average at the end "
        f"{load_avg} (1/5/15 min).",
        "",
        *lines,
        "",
        *(f"- {v}" for v in verdicts),
        "",
    ]
    for f in results:
        out.append(
            f"- {f.backend}: {f.loaded.bookings:,} bookings ({f.loaded.series} weekly series, "
            f"{f.loaded.cancelled} cancelled); the feed holds {f.vevents:,} events in "
            f"{f.feed_bytes / 1000:,.0f} kB ({f.gzip_bytes / 1000:,.0f} kB gzip-compressed); "
            "icalendar's serialization gave "
            f"{'exactly the same bytes' if f.same_bytes else 'different bytes'}; "
            f"{f.audited} fetches audited of {f.fetches} made."
        )
    out += ["", END]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--rounds", type=int, help="counted rounds per backend (default 15; 10 with PostgreSQL)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument(
        "--profile", action="store_true", help="only profile a cold render and a feed request"
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.profile:
        for backend in Backend.available():
            profile(backend)
        return 0
    started = time.perf_counter()
    backends = Backend.available()
    rounds = args.rounds or (15 if len(backends) == 1 else 10)
    _log("backends: " + ", ".join(b.name for b in backends))
    logs = Path(tempfile.mkdtemp(prefix="pk-bench-feed-"))
    # Radicale's files in memory where there is a tmpfs: loading 1,000 events is then not
    # 1,000 fsyncs (about half of the 20 s it takes on disk); a GET writes nothing anyway.
    shm = Path("/dev/shm")
    store = Path(tempfile.mkdtemp(prefix="pk-bench-radicale-", dir=shm if shm.is_dir() else None))
    results = []
    try:
        with radicale(store) as radicale_port:
            auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            anchor = Anchor(Client(radicale_port, {"Authorization": f"Basic {auth}"}))
            for backend in backends:
                _log(f"{backend.name}: loading and measuring")
                results.append(measure(backend, rounds, anchor, logs))
            anchor.client.close()
    finally:
        shutil.rmtree(logs, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    lines, verdicts = table(results)
    print("\n".join(lines))
    print()
    for line in verdicts:
        print(line.replace("**", ""))
    if not args.no_doc:
        write_doc(section(results, rounds), start=START, end=END, heading=HEADING)
        _log("figures written to docs/benchmarks.md")
    _log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
