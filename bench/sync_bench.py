"""Live sync benchmark of issue 7: one sync round over 200 ICS URL sources of 50 bookings
each, served by a local HTTP server, and how the time grows with the number of sources.

Three rounds per size, each through ``sync_due`` as the scheduler runs it (one process,
sources read one after another): the first read (fetch, parse, insert), an unchanged
round (every server answers 304 to the stored ETag), and a round in which every calendar
changed (one visit moved in each: fetch, parse, merge, one update).

    make bench          # or: python -m bench.sync_bench [SOURCES] with TEST_DATABASE_URL
"""

from __future__ import annotations

import sys
import threading
import warnings
from datetime import UTC, datetime, timedelta

from werkzeug.serving import WSGIRequestHandler, make_server

from bench.harness import Backend, fresh_database, timed
from bench.report import write_doc
from calendar_app.models import Person
from calendar_app.services import sources as source_service
from calendar_app.services import sync
from calendar_app.services.access import Actor
from tests.support.feeds import FeedServer

SOURCES = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SIZES = sorted({max(1, SOURCES // 4), max(1, SOURCES // 2), SOURCES})
BOOKINGS = 50
START, END = "<!-- bench:sync:start -->", "<!-- bench:sync:end -->"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


def calendar(number: int, moved: bool = False) -> bytes:
    """A provider's calendar of 50 one-hour visits on weekdays from next week on."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    first = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    for index in range(BOOKINGS):
        start = first + timedelta(
            days=7 + index, hours=(index % 6) + (1 if moved and not index else 0)
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:bench-{number}-{index}@vard.example.se",
            f"DTSTAMP:{first:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Besök {index}",
            "LOCATION:Sigfridsvägen 9\\, Växjö",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def policy() -> sync.SyncPolicy:
    return sync.SyncPolicy(
        secret_key="bench",
        credentials={},
        allowed_hosts=frozenset({"127.0.0.1"}),
        max_bytes=10 * 1024 * 1024,
        timeout=20.0,
        lease=timedelta(minutes=10),
        mass_cancel_share=0.5,
        failing_after=3,
        poll_minutes=30,
        batch=10_000,
    )


def measure(backend: Backend, feeds: FeedServer, count: int) -> dict[str, float]:
    rules = policy()
    now = datetime.now(UTC)
    with fresh_database(backend) as db:
        with db.sessions() as session:
            for number in range(count):
                person = Person(
                    personnummer=f"19{number:010d}",
                    name=f"Person {number}",
                    timezone="Europe/Stockholm",
                    created_at=now,
                )
                session.add(person)
                session.commit()
                source_service.add_source(
                    session,
                    Actor.operator(),
                    person_id=person.id,
                    adapter="ics_url",
                    fields={"url": feeds.set(f"/{number}.ics", calendar(number))},
                    unit_name="Vuxenpsykiatrin Växjö",
                    name="tidbok",
                    policy=rules,
                    now=now,
                )
        figures: dict[str, float] = {}
        for name, offset in (("first", 0), ("unchanged", 1), ("changed", 2)):
            if name == "changed":
                for number in range(count):
                    feeds.set(f"/{number}.ics", calendar(number, moved=True))
            moment = now + timedelta(hours=offset)
            seconds, outcomes = timed(
                lambda moment=moment: sync.sync_due(
                    db.sessions, rules, worker="bench", clock=lambda: moment
                )
            )
            failed = [o for o in outcomes if o.error_code or o.state != "ok"]
            if len(outcomes) != count or failed:
                raise SystemExit(f"{name}: {len(outcomes)} read, failed: {failed[:3]}")
            figures[name] = seconds
        return figures


def main() -> int:
    warnings.simplefilter("ignore")
    feeds = FeedServer()
    server = make_server("127.0.0.1", 0, feeds, threaded=True, request_handler=_Quiet)
    feeds.base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lines = [
        "| database | sources × 50 bookings | first read | unchanged (304) | all changed | "
        "per source, all changed |",
        "|---|---|---|---|---|---|",
    ]
    growth = []
    try:
        for backend in Backend.available():
            per_size = {}
            for size in SIZES:
                figures = measure(backend, feeds, size)
                per_size[size] = figures
                lines.append(
                    f"| {backend.name} | {size} | {figures['first']:.2f} s | "
                    f"{figures['unchanged']:.2f} s | {figures['changed']:.2f} s | "
                    f"{1000 * figures['changed'] / size:.1f} ms |"
                )
                print(lines[-1], flush=True)
            small, large = SIZES[0], SIZES[-1]
            ratio = per_size[large]["changed"] / per_size[small]["changed"]
            scale = large / small
            shape = (
                "about linear"
                if abs(ratio / scale - 1) < 0.25
                else "less than linear (the smallest run also pays warm-up)"
                if ratio < scale
                else "more than linear"
            )
            growth.append(
                f"- {backend.name}: {large} sources take {ratio:.1f}× the time of {small} "
                f"({scale:.0f}× the sources): {shape} in the number of sources."
            )
    finally:
        server.shutdown()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            START,
            "",
            f"Measured {stamp}, same machine, one scheduler process reading sources one "
            "after another from a local HTTP server (werkzeug, threaded).",
            "",
            *lines,
            "",
            *growth,
            "",
            END,
        ]
    )
    write_doc(section, start=START, end=END, heading="Live sync: one round over many sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
