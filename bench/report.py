"""The results table (printed) and the figures section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.calendar_bench import TARGET_MS, CalendarFigures
from bench.harness import Backend, Samples
from bench.import_bench import TARGET_RATIO, ImportFigures

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START = "<!-- bench:figures:start (written by `python -m bench.run`; do not edit by hand) -->"
END = "<!-- bench:figures:end -->"
LIBRARIES = ("icalendar", "recurring-ical-events", "SQLAlchemy", "psycopg")


@dataclass(frozen=True)
class Machine:
    date: str
    cpus: int
    cpu: str
    system: str
    python: str
    sqlite: str
    postgresql: str | None
    libraries: str
    load: str


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _postgres_version(backends: list[Backend]) -> str | None:
    for backend in backends:
        if backend.url is not None:
            engine = create_engine(backend.url)
            try:
                with engine.connect() as conn:
                    return str(conn.execute(text("SHOW server_version")).scalar())
            finally:
                engine.dispose()
    return None


def machine(backends: list[Backend]) -> Machine:
    """What the figures were measured on."""
    libraries = []
    for name in LIBRARIES:
        try:
            libraries.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 0,
        cpu=_cpu_name(),
        system=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        sqlite=sqlite3.sqlite_version,
        postgresql=_postgres_version(backends),
        libraries=", ".join(libraries),
        load=" / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?",
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _row(samples: Samples, label: str, target: str, verdict: str) -> list[str]:
    return [
        label,
        samples.backend,
        str(len(samples.times)),
        _ms(samples.median),
        _ms(samples.low),
        _ms(samples.high),
        target,
        verdict,
    ]


def rows(imports: ImportFigures | None, calendar: CalendarFigures | None) -> list[list[str]]:
    """One row per measurement: what, backend, runs, median, min, max, target, verdict."""
    result: list[list[str]] = []
    if imports is not None:
        n = imports.file.vevents
        result.append(_row(imports.bare, f"bare icalendar parse, {n:,} events", "", ""))
        for backend, samples in imports.imports.items():
            ratio = imports.ratio(backend)
            verdict = ("met" if imports.met(backend) else "MISSED") + f" ({ratio:.2f}×)"
            target = f"≤ {TARGET_RATIO:g}× bare"
            result.append(_row(samples, f"import, {n:,} events", target, verdict))
            again = imports.reimports[backend]
            ratio = again.median / imports.bare.median
            result.append(_row(again, "re-import, unchanged", "", f"({ratio:.2f}× bare)"))
    if calendar is not None:
        for backend, samples in calendar.year.items():
            verdict = "met" if calendar.met(backend) else "MISSED"
            result.append(
                _row(
                    samples,
                    f"merged calendar, 1 year ({calendar.bookings[backend]:,} bookings)",
                    f"median < {TARGET_MS:g} ms",
                    verdict,
                )
            )
            result.append(_row(calendar.week[backend], "merged calendar, 7 days", "", ""))
            if backend in calendar.uncached:
                result.append(
                    _row(calendar.uncached[backend], "merged calendar, 1 year, uncached", "", "")
                )
    return result


HEADER = ["measurement", "backend", "runs", "median", "min", "max", "target", "result"]


def text_table(table: list[list[str]]) -> str:
    """The table as aligned plain text, for the terminal."""
    widths = [max(len(r[i]) for r in [HEADER, *table]) for i in range(len(HEADER))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [HEADER, *table]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown_table(table: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(r) + " |" for r in table]
    return out


def verdicts(imports: ImportFigures | None, calendar: CalendarFigures | None) -> list[str]:
    """Plain sentences: each target, met or missed, per backend."""
    lines = []
    if imports is not None:
        for backend in imports.imports:
            ratio = imports.ratio(backend)
            word = "met" if imports.met(backend) else "**missed**"
            lines.append(
                f"Import target {word} on {backend}: the import takes {ratio:.2f}× a bare "
                f"icalendar parse (target ≤ {TARGET_RATIO:g}×)."
            )
    if calendar is not None:
        for backend, samples in calendar.year.items():
            median = samples.median * 1000
            word = "met" if calendar.met(backend) else "**missed**"
            factor = "" if calendar.met(backend) else f", {median / TARGET_MS:.1f}× over"
            lines.append(
                f"Merged-calendar target {word} on {backend}: median {median:.1f} ms for one "
                f"year (target < {TARGET_MS:g} ms{factor})."
            )
    return lines


def figures_section(
    info: Machine, imports: ImportFigures | None, calendar: CalendarFigures | None
) -> str:
    """The generated part of docs/benchmarks.md, between its markers."""
    pg = info.postgresql or "not run (TEST_DATABASE_URL not set)"
    out = [
        START,
        "",
        f"Measured {info.date} on {info.cpus} CPUs ({info.cpu}), {info.system}, "
        f"{info.python}, SQLite {info.sqlite}, PostgreSQL {pg}; {info.libraries}. "
        f"Load average when the figures were written: {info.load} (1/5/15 min).",
        "",
        *_markdown_table(rows(imports, calendar)),
        "",
    ]
    out += [f"- {line}" for line in verdicts(imports, calendar)]
    if imports is not None:
        f = imports.file
        out += [
            "",
            f"Import file: {len(f.data) / 1e6:.1f} MB, {f.vevents:,} VEVENTs ({f.singles:,} "
            f"single, {f.series} weekly series of which {f.exdated_series} with an EXDATE, "
            f"{f.overrides} moved occurrences). Summaries of the last round:",
            "",
        ]
        for backend in imports.first:
            out.append(
                f"- {backend}: first import \u201c{imports.first[backend]}\u201d; "
                f"re-import \u201c{imports.again[backend]}\u201d."
            )
    if calendar is not None:
        out.append("")
        for backend in calendar.year:
            out.append(
                f"- Calendar on {backend}: {calendar.bookings[backend]:,} bookings "
                f"({calendar.series[backend]} weekly series), "
                f"{calendar.occurrences_year[backend]:,} occurrences in the year, "
                f"{calendar.occurrences_week[backend]} in the week; the first call, with no "
                f"parsed series cached, took {_ms(calendar.cold[backend])}."
            )
    out += ["", END]
    return "\n".join(out)


def write_doc(
    section: str, *, start: str = START, end: str = END, heading: str = "Figures"
) -> Path:
    """Replace one marked section of docs/benchmarks.md (append it if it is missing)."""
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if start in current and end in current:
        before = current[: current.index(start)]
        after = current[current.index(end) + len(end) :]
        updated = before + section + after
    else:
        updated = current.rstrip("\n") + f"\n\n## {heading}\n\n" + section + "\n"
    DOC.write_text(updated, encoding="utf-8")
    return DOC
