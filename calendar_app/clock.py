"""The application's one clock: the only module that reads the system's calendar time.

``create_app(clock=...)`` is given a :class:`Clock` (the system clock unless a test, a
benchmark or a demo chooses an instant) and every view, API endpoint, CLI command,
scheduler job, feed fetch and background render asks it what time it is. Services and
domain functions take ``now`` as an argument instead. The database server's ``now()``
decides nothing: its clock may differ from ours.

Durations (timeouts, how long a request took) are measured with ``time.monotonic`` and
``time.perf_counter``, which say nothing about the calendar and may be read anywhere.
``tests/unit/test_clock_discipline.py`` fails if a new reading of the system clock
appears outside this module.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from."""

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        ...


class SystemClock:
    """The machine's clock (kept right by NTP in production)."""

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still at a chosen instant until it is moved.

    For tests and benchmarks that build their world at an instant of their own, and for
    anything else that must not depend on the day it runs. Safe to read from any thread.
    """

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._at = _aware_utc(at)

    def now(self) -> datetime:
        """The instant the clock stands at."""
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        """Move the clock to ``at`` (forwards or backwards)."""
        with self._lock:
            self._at = _aware_utc(at)

    def advance(self, by: timedelta) -> datetime:
        """Move the clock on by ``by`` and say where it stands now."""
        with self._lock:
            self._at += by
            return self._at


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a clock needs an aware instant, not a naive one")
    return value.astimezone(UTC)
