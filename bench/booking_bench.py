"""Booking benchmarks of DESIGN §7 (issue 5):

- suggestions for a person with 300 bookings in 90 days: median < 50 ms (`suggest_times`,
  the caregiver's whole use case, on SQLite);
- clash detection over 10,000 and 100,000 bookings: grows as n log n, so
  time(100k) / time(10k) <= 12 (`overlapping_pairs`, the sweep behind every overlap mark).

    python -m bench.booking_bench          # prints and records its section of the doc
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bench.data import care_bookings
from bench.harness import Backend, add_person, fresh_database, timed
from bench.report import DOC, write_doc
from calendar_app.domain.intervals import Interval, overlapping_pairs
from calendar_app.models import Provider, ProviderKind, Role, User
from calendar_app.services.access import Actor
from calendar_app.services.booking import suggest_times
from calendar_app.services.imports import import_ics_file

NOW = datetime(2026, 1, 4, 12, tzinfo=UTC)
FIRST = date(2026, 1, 5)
START, END = "<!-- bench:booking:start -->", "<!-- bench:booking:end -->"


def suggestions(runs: int = 30) -> tuple[float, float, int]:
    """(median seconds, min seconds, suggestions) for a 14-day suggestion request."""
    backend = Backend("sqlite")
    with fresh_database(backend) as db:
        person_id = add_person(db, NOW)
        data = care_bookings(300, seed=7, first_day=FIRST, days=90, uid_prefix="sg").data
        with db.sessions() as session:
            import_ics_file(
                session,
                person_id=person_id,
                provider_name="Vuxenpsykiatrin Växjö",
                provider_kind=ProviderKind.REGION,
                source_name="fil",
                data=data,
                now=NOW,
                max_bytes=10 * 1024 * 1024,
            )
            provider = session.scalars(select(Provider)).one()
            user = User(
                username="karin",
                display_name="Karin",
                password_hash="x",
                role=Role.CAREGIVER,
                provider_id=provider.id,
            )
            session.add(user)
            session.commit()
            actor = Actor(
                user_id=user.id,
                role=Role.CAREGIVER,
                label="Karin",
                provider_id=provider.id,
                unit_name=provider.name,
            )
        times: list[float] = []
        found = 0
        for index in range(runs + 3):
            with db.sessions() as session:
                seconds, result = timed(
                    lambda: suggest_times(
                        session,
                        actor,
                        person_id,
                        minutes=45,
                        first_day=FIRST + timedelta(days=30),
                        last_day=FIRST + timedelta(days=43),
                        location="Sigfridsvägen 9, 352 46 Växjö",
                        now=NOW,
                    )
                )
            if index >= 3:
                times.append(seconds)
                found = len(result)
    return statistics.median(times), min(times), found


def _intervals(n: int, seed: int) -> list[Interval]:
    """n visits at a constant density (about 6 a day), 15 to 120 minutes long."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    span_minutes = n * 240
    result = []
    for i in range(n):
        start = base + timedelta(minutes=rng.randrange(span_minutes))
        result.append(Interval(i, start, start + timedelta(minutes=rng.randrange(15, 121))))
    return result


def clash_scaling(repeat: int = 5) -> tuple[float, float, float]:
    """(median 10k seconds, median 100k seconds, ratio), interleaved."""
    small, large = _intervals(10_000, 1), _intervals(100_000, 2)
    t_small: list[float] = []
    t_large: list[float] = []
    for _ in range(repeat):
        t_small.append(timed(lambda: overlapping_pairs(small))[0])
        t_large.append(timed(lambda: overlapping_pairs(large))[0])
    a, b = statistics.median(t_small), statistics.median(t_large)
    return a, b, b / a


def main() -> int:
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    median, low, found = suggestions()
    small, large, ratio = clash_scaling()
    lines = [
        "| measurement | median | target | result |",
        "|---|---|---|---|",
        f"| suggestions, 300 bookings in 90 days, 14-day request ({found} suggested; "
        f"min {low * 1000:.1f} ms) | {median * 1000:.1f} ms | < 50 ms | "
        f"{'met' if median < 0.05 else '**missed**'} |",
        f"| clash detection (overlap sweep), 10,000 bookings | {small * 1000:.0f} ms | | |",
        f"| clash detection (overlap sweep), 100,000 bookings | {large * 1000:.0f} ms | "
        f"ratio ≤ 12 | {'met' if ratio <= 12 else '**missed**'} ({ratio:.1f}×) |",
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [START, "", f"Measured {stamp} on SQLite, same machine as above.", "", *lines, "", END]
    )
    print("\n".join(lines))
    write_doc(section, start=START, end=END, heading="Booking: suggestions and clash detection")
    print(
        f"done in {time.perf_counter() - started:.0f} s; figures written to {DOC}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
