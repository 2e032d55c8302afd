"""Target 1: importing a 10,000-event ICS file versus a bare icalendar parse of it.

Each repetition parses the file with ``icalendar.Calendar.from_ical`` and then, on each
backend, imports it with ``import_ics_file`` (parse, expand, reconcile, store) into a fresh
database, then imports it again unchanged (the re-import must change nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import icalendar
from sqlalchemy.orm import Session, sessionmaker

from bench.data import GeneratedFile, care_bookings
from bench.harness import Backend, Samples, add_person, fresh_database, timed
from calendar_app.domain import recurrence
from calendar_app.models import ProviderKind
from calendar_app.services.imports import ImportSummary, import_ics_file

EVENTS = 10_000
SEED = 20260101
FIRST_DAY = date(2026, 1, 5)
NOW = datetime(2026, 1, 2, 7, 0, tzinfo=UTC)  # before every booking in the file
MAX_BYTES = 10 * 1024 * 1024  # the application's default MAX_ICS_BYTES
TARGET_RATIO = 3.0


@dataclass
class ImportFigures:
    file: GeneratedFile
    bare: Samples
    imports: dict[str, Samples] = field(default_factory=dict)
    reimports: dict[str, Samples] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)  # summary line of a first import
    again: dict[str, str] = field(default_factory=dict)  # summary line of a re-import

    def ratio(self, backend: str) -> float:
        return self.imports[backend].median / self.bare.median

    def met(self, backend: str) -> bool:
        return self.ratio(backend) <= TARGET_RATIO


def bench_file() -> GeneratedFile:
    """The measured file: 10,000 VEVENTs, 3 % weekly series, 1 % overrides."""
    return care_bookings(EVENTS, seed=SEED, first_day=FIRST_DAY)


def _import(
    db_sessions: sessionmaker[Session], person_id: int, data: bytes, now: datetime
) -> ImportSummary:
    with db_sessions() as session:
        return import_ics_file(
            session,
            person_id=person_id,
            provider_name="Region Kronoberg",
            provider_kind=ProviderKind.REGION,
            source_name="1177 Tidbok (fil)",
            data=data,
            now=now,
            max_bytes=MAX_BYTES,
        )


def _one_backend(
    backend: Backend, data: bytes, expected: int, figures: ImportFigures | None
) -> tuple[float, float]:
    """Import ``data`` into a fresh database, then again; check the counts; (t1, t2)."""
    with fresh_database(backend) as db:
        person_id = add_person(db, NOW)
        recurrence._parsed.cache_clear()  # a new file's series have not been seen before
        first_time, first = timed(lambda: _import(db.sessions, person_id, data, NOW))
        again_time, again = timed(
            lambda: _import(db.sessions, person_id, data, NOW + timedelta(hours=1))
        )
    if (first.added, len(first.skipped)) != (expected, 0):
        raise SystemExit(f"{backend.name}: unexpected first import: {first.line()}")
    if (again.added, again.updated, again.cancelled, again.unchanged) != (0, 0, 0, expected):
        raise SystemExit(f"{backend.name}: the re-import changed something: {again.line()}")
    if figures is not None:
        figures.first[backend.name], figures.again[backend.name] = first.line(), again.line()
    return first_time, again_time


def run(backends: list[Backend], repeat: int, log: Callable[[str], None]) -> ImportFigures:
    """Measure ``repeat`` rounds of bare parse / import / re-import, side by side."""
    generated = bench_file()
    if len(generated.data) > MAX_BYTES:
        raise SystemExit("the generated file is larger than MAX_ICS_BYTES")
    log(
        f"import: {generated.vevents} VEVENTs, {len(generated.data) / 1e6:.1f} MB; "
        "warming up on a 200-event file"
    )
    small = care_bookings(200, seed=SEED + 1, first_day=FIRST_DAY)
    icalendar.Calendar.from_ical(small.data)
    for backend in backends:
        _one_backend(backend, small.data, small.vevents, None)

    figures = ImportFigures(file=generated, bare=Samples("bare icalendar parse", "-"))
    for backend in backends:
        figures.imports[backend.name] = Samples("import", backend.name)
        figures.reimports[backend.name] = Samples("re-import", backend.name)
    for round_no in range(1, repeat + 1):
        bare, _ = timed(lambda: icalendar.Calendar.from_ical(generated.data))
        figures.bare.times.append(bare)
        line = [f"bare {bare:.2f}s"]
        for backend in backends:
            first, again = _one_backend(backend, generated.data, generated.vevents, figures)
            figures.imports[backend.name].times.append(first)
            figures.reimports[backend.name].times.append(again)
            line.append(f"{backend.name} import {first:.2f}s re-import {again:.2f}s")
        log(f"import round {round_no}/{repeat}: " + ", ".join(line))
    return figures
