"""Target 2: the merged calendar of one person with 2,000 bookings, one-year window.

The bookings come in through the real import path from two units (1,600 + 400 VEVENTs,
5 % of them weekly series, 1 % moved occurrences). ``merged_calendar`` is then timed for
a one-year window and for a 7-day window (the week view), interleaved, after a warm-up;
the very first call, with the parsed-series cache empty, is reported on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bench.data import care_bookings
from bench.harness import Backend, Database, Samples, add_person, fresh_database, timed
from calendar_app.domain import recurrence
from calendar_app.models import Booking, ProviderKind
from calendar_app.services.calendar import CACHE, merged_calendar
from calendar_app.services.imports import import_ics_file

SEED = 20262000
NOW = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Stockholm")
MAX_DAYS = 400  # the application's default MAX_QUERY_DAYS
YEAR = (date(2026, 1, 1), date(2027, 1, 1))
WEEK = (date(2026, 3, 23), date(2026, 3, 30))  # Monday to Monday, across the DST change
TARGET_MS = 50.0
WARM_UP = 3
UNITS = (
    ("Region Kronoberg", ProviderKind.REGION, "region", 1600),
    ("Växjö kommun, hemsjukvård", ProviderKind.MUNICIPALITY, "kommun", 400),
)


@dataclass
class CalendarFigures:
    bookings: dict[str, int] = field(default_factory=dict)
    series: dict[str, int] = field(default_factory=dict)
    occurrences_year: dict[str, int] = field(default_factory=dict)
    occurrences_week: dict[str, int] = field(default_factory=dict)
    cold: dict[str, float] = field(default_factory=dict)
    uncached: dict[str, Samples] = field(default_factory=dict)
    year: dict[str, Samples] = field(default_factory=dict)
    week: dict[str, Samples] = field(default_factory=dict)

    def met(self, backend: str) -> bool:
        return self.year[backend].median * 1000 < TARGET_MS


def _load(db: Database, person_id: int) -> tuple[int, int]:
    for index, (name, kind, prefix, count) in enumerate(UNITS):
        generated = care_bookings(
            count, seed=SEED + index, first_day=YEAR[0], series_share=0.05, uid_prefix=prefix
        )
        with db.sessions() as session:
            summary = import_ics_file(
                session,
                person_id=person_id,
                provider_name=name,
                provider_kind=kind,
                source_name="fil",
                data=generated.data,
                now=NOW,
                max_bytes=10 * 1024 * 1024,
            )
        if summary.added != count or summary.skipped:
            raise SystemExit(f"unexpected import for the calendar benchmark: {summary.line()}")
    with db.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Booking))
        series = session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.recurrence_ics.is_not(None), Booking.recurrence_key == "")
        )
    return int(total or 0), int(series or 0)


def _query(db: Database, person_id: int, window: tuple[date, date]) -> tuple[float, int]:
    """Time one ``merged_calendar`` call in a new session; (seconds, occurrences)."""
    with db.sessions() as session:
        seconds, found = timed(
            lambda: merged_calendar(
                session, person_id, window[0], window[1], zone=ZONE, max_days=MAX_DAYS
            )
        )
    return seconds, len(found)


def run(backends: list[Backend], runs: int, log: Callable[[str], None]) -> CalendarFigures:
    """Median of ``runs`` calls for the year and the week window on each backend."""
    figures = CalendarFigures()
    for backend in backends:
        with fresh_database(backend) as db:
            person_id = add_person(db, NOW)
            figures.bookings[backend.name], figures.series[backend.name] = _load(db, person_id)
            # as in a freshly started worker: no parsed series, no cached calendar
            recurrence._parsed.cache_clear()
            recurrence._query.cache_clear()
            recurrence._year.cache_clear()
            CACHE.clear()
            cold, count = _query(db, person_id, YEAR)
            figures.cold[backend.name] = cold
            figures.occurrences_year[backend.name] = count
            figures.occurrences_week[backend.name] = _query(db, person_id, WEEK)[1]
            for _ in range(WARM_UP):
                _query(db, person_id, YEAR)
                _query(db, person_id, WEEK)
            uncached = figures.uncached[backend.name] = Samples(
                "merged calendar, 1 year, cache emptied before each call", backend.name
            )
            for _ in range(10):
                CACHE.clear()
                uncached.times.append(_query(db, person_id, YEAR)[0])
            year = figures.year[backend.name] = Samples("merged calendar, 1 year", backend.name)
            week = figures.week[backend.name] = Samples("merged calendar, 7 days", backend.name)
            for _ in range(runs):
                year.times.append(_query(db, person_id, YEAR)[0])
                week.times.append(_query(db, person_id, WEEK)[0])
        log(
            f"calendar {backend.name}: {figures.bookings[backend.name]} bookings, "
            f"year median {year.median * 1000:.1f} ms, week median {week.median * 1000:.1f} ms"
        )
    return figures
