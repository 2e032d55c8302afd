"""Reminder dispatch benchmark of DESIGN §7 (issue 6):

10,000 due reminders dispatched by two `calendar-app scheduler` processes on PostgreSQL
through a local fake of Twilio's Messages API (the real twilio client calls it): every
reminder sent exactly once (0 duplicates, 0 lost); throughput recorded.

    make bench          # or: python -m bench.reminder_bench with TEST_DATABASE_URL set
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from bench.harness import Backend, fresh_database
from bench.report import write_doc
from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    Person,
    Provider,
    ProviderKind,
    Reminder,
    ReminderState,
    Source,
)

REMINDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
PEOPLE = max(1, REMINDERS // 10)
START, END = "<!-- bench:reminders:start -->", "<!-- bench:reminders:end -->"


class FakeTwilio:
    """Accepts every message like Twilio's Messages API and counts what it got."""

    def __init__(self) -> None:
        self.received: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):  # a WSGI app
        form = Request(environ).form
        with self.lock:
            self.received[(form.get("To", ""), form.get("Body", ""))] += 1
        body = {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": form.get("To")}
        return Response(json.dumps(body), status=201, mimetype="application/json")(
            environ, start_response
        )


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass  # 10,000 access-log lines would only slow the fake down


def _fill(db, now: datetime) -> None:
    """1,000 people with 10 visits each (on separate days), one due reminder per visit."""
    with db.sessions() as session:
        unit = Provider(name="Vuxenpsykiatrin Växjö", kind=ProviderKind.REGION, opening_hours="")
        session.add(unit)
        session.flush()
        source = Source(provider_id=unit.id, name="bench", adapter="ics")
        session.add(source)
        session.flush()
        people = [
            {
                "personnummer": f"19{i:010d}",
                "name": f"Person {i}",
                "phone_e164": f"+4670{i:07d}",
                "timezone": "Europe/Stockholm",
                "created_at": now,
                "protected_identity": False,
                "calendar_version": 0,
            }
            for i in range(PEOPLE)
        ]
        session.execute(insert(Person), people)
        ids = list(session.scalars(select(Person.id).order_by(Person.id)))
        bookings = []
        for n in range(REMINDERS):
            start = now + timedelta(days=1 + n // PEOPLE, hours=2)
            bookings.append(
                {
                    "person_id": ids[n % PEOPLE],
                    "source_id": source.id,
                    "provider_id": unit.id,
                    "uid": f"b{n}",
                    "recurrence_key": "",
                    "start_utc": start,
                    "end_utc": start + timedelta(minutes=30),
                    "range_start_utc": start,
                    "range_end_utc": start + timedelta(minutes=30),
                    "title": "Samtal",
                    "location": "Sigfridsvägen 9",
                    "status": BookingStatus.CONFIRMED,
                    "origin": BookingOrigin.SYNCED,
                    "content_hash": "x",
                    "first_seen_utc": now,
                    "last_seen_utc": now,
                }
            )
        session.execute(insert(Booking), bookings)
        booking_rows = session.execute(
            select(Booking.id, Booking.person_id, Booking.start_utc).order_by(Booking.id)
        ).all()
        session.execute(
            insert(Reminder),
            [
                {
                    "person_id": person_id,
                    "booking_id": booking_id,
                    "occurrence_key": "",
                    "visit_start_utc": start,
                    "rule_label": "days_before 1 18:00",
                    "recipient_label": "person",
                    "send_at_utc": now - timedelta(seconds=n % 600),
                    "state": ReminderState.PLANNED,
                    "reason": "",
                    "attempts": 0,
                    "body": "",
                    "segments": 0,
                    "created_utc": now,
                    "changed_utc": now,
                }
                for n, (booking_id, person_id, start) in enumerate(booking_rows)
            ],
        )
        session.commit()


def run() -> dict[str, float]:
    backend = next((b for b in Backend.available() if b.name == "postgresql"), None)
    if backend is None:
        raise SystemExit("set TEST_DATABASE_URL to a PostgreSQL server (make bench does)")
    fake = FakeTwilio()
    server = make_server("127.0.0.1", 0, fake, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    now = datetime.now(UTC)
    with fresh_database(backend) as db:
        _fill(db, now)
        url = db.engine.url.render_as_string(hide_password=False)
        env = {
            **os.environ,
            "CALENDAR_APP_DATABASE_URL": url,
            "CALENDAR_APP_SCHEDULER_DISPATCH_SECONDS": "1",
            # Dispatch alone: the hourly re-planning would move these synthetic rows' times.
            "CALENDAR_APP_SCHEDULER_REPLAN_MINUTES": "0",
            "CALENDAR_APP_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "CALENDAR_APP_TWILIO_AUTH_TOKEN": "bench",
            "CALENDAR_APP_TWILIO_FROM": "+46700000000",
            "CALENDAR_APP_TWILIO_API_BASE_URL": f"http://127.0.0.1:{server.server_port}",
            "CALENDAR_APP_PUBLIC_BASE_URL": "https://kal.example.se",
        }
        command = [str(Path(sys.executable).parent / "calendar-app"), "scheduler"]
        logs = Path(tempfile.mkdtemp(prefix="pk-bench-sched-"))
        started = time.perf_counter()
        processes = []
        for name in ("a", "b"):
            with (logs / f"{name}.log").open("w") as out:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        try:
            while True:
                with db.sessions() as session:
                    left = session.scalar(
                        select(func.count())
                        .select_from(Reminder)
                        .where(Reminder.state.in_([ReminderState.PLANNED, ReminderState.SENDING]))
                    )
                if not left:
                    break
                if time.perf_counter() - started > 900:
                    raise SystemExit(f"{left} reminders still unsent after 15 minutes")
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
        with db.sessions() as session:
            states = dict(
                session.execute(select(Reminder.state, func.count()).group_by(Reminder.state)).all()
            )
            sids = session.scalar(select(func.count(func.distinct(Reminder.message_sid))))
    server.shutdown()
    sent = sum(fake.received.values())
    return {
        "seconds": elapsed,
        "sent_states": float(states.get(ReminderState.SENT, 0)),
        "received": float(sent),
        "distinct": float(len(fake.received)),
        "duplicates": float(sent - len(fake.received)),
        "lost": float(REMINDERS - len(fake.received)),
        "sids": float(sids or 0),
    }


def main() -> int:
    warnings.simplefilter("ignore")
    figures = run()
    rate = REMINDERS / figures["seconds"]
    ok = figures["duplicates"] == 0 and figures["lost"] == 0
    lines = [
        "| measurement | result | target |",
        "|---|---|---|",
        f"| {REMINDERS:,} due reminders, 2 scheduler processes, PostgreSQL, fake Twilio API | "
        f"{figures['seconds']:.1f} s ({rate:.0f} messages/s, including start-up) | "
        f"0 duplicates, 0 lost: {'met' if ok else '**missed**'} |",
        f"| messages received by the fake / distinct / duplicates / lost | "
        f"{figures['received']:.0f} / {figures['distinct']:.0f} / "
        f"{figures['duplicates']:.0f} / {figures['lost']:.0f} | |",
        f"| rows sent / distinct Message SIDs recorded | "
        f"{figures['sent_states']:.0f} / {figures['sids']:.0f} | |",
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [START, "", f"Measured {stamp} on PostgreSQL 15, same machine.", "", *lines, "", END]
    )
    print("\n".join(lines))
    write_doc(section, start=START, end=END, heading="Reminders: dispatch by two schedulers")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
