"""Time is an argument: only ``calendar_app/clock.py`` reads the system's calendar time.

Read from the source, so a new call anywhere in the package (a view, a job, a migration)
fails here before it can make a test depend on the day it runs. Durations
(``time.monotonic``, ``time.perf_counter``) are not calendar time and stay allowed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "calendar_app"
CLOCK_MODULE = PACKAGE / "clock.py"

# Calls that read the wall clock, by the last two parts of their dotted name.
SYSTEM_CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("time", "ctime"),
    ("time", "asctime"),
    ("func", "now"),
    ("func", "current_timestamp"),
    ("func", "current_date"),
    ("func", "current_time"),
    ("func", "localtimestamp"),
    ("func", "localtime"),
    ("func", "statement_timestamp"),
    ("func", "clock_timestamp"),
    ("func", "transaction_timestamp"),
}
# Names that, imported on their own from ``time``, read the wall clock when called.
TIME_FUNCTIONS = {"time", "time_ns", "localtime", "gmtime", "ctime", "asctime"}
# The database server's clock in SQL text.
SQL_CLOCK = re.compile(
    r"\b(now\s*\(\)|current_timestamp|current_date|localtimestamp|statement_timestamp|"
    r"clock_timestamp|transaction_timestamp|datetime\s*\(\s*'now'|date\s*\(\s*'now')",
    re.IGNORECASE,
)


def _dotted(node: ast.expr) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def clock_reads(source: str) -> list[tuple[int, str]]:
    """Every place in ``source`` that reads the system clock: (line, what)."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    bare_time_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            for alias in node.names:
                if alias.name in TIME_FUNCTIONS:
                    bare_time_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts = _dotted(node.func)
            if len(parts) >= 2 and tuple(parts[-2:]) in SYSTEM_CLOCK_CALLS:
                found.append((node.lineno, ".".join(parts)))
            elif len(parts) == 1 and parts[0] in bare_time_names:
                found.append((node.lineno, parts[0]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_CLOCK.search(node.value)
            if match:
                found.append((node.lineno, f"SQL {match.group(0)!r}"))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != CLOCK_MODULE)


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_but_the_clock_reads_the_system_clock(module: Path):
    assert clock_reads(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime, UTC\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "from time import time as wall\nx = wall()",
        "from sqlalchemy import func\nx = func.now()",
        "import sqlalchemy as sa\nx = sa.func.current_timestamp()",
        "Q = 'UPDATE feed SET last_fetched_utc = now() WHERE id = 1'",
        "Q = \"SELECT datetime('now')\"",
    ],
)
def test_the_check_finds_each_way_of_reading_the_clock(source: str):
    assert len(clock_reads(source)) == 1


def test_the_check_leaves_durations_and_our_own_clock_alone():
    source = (
        "import time\nstarted = time.monotonic()\nspent = time.perf_counter() - started\n"
        "now = clock.now()\nlater = app.extensions['clock'].now()\n"
        "text = 'Vi hör av oss nu'\n"
    )
    assert clock_reads(source) == []
