"""What the runner measures beside locust: CPU by process group, server time by request type.

CPU is read from /proc (psutil) once a second for every process, grouped as the app
(gunicorn's master and workers), PostgreSQL's backends serving the load test's database,
the rest of the PostgreSQL server (its background processes, and other databases: the
server is shared with whoever else runs tests here), locust, and everything else on the
machine. Server time per request comes from gunicorn's access log, whose lines end in the
time the worker spent on the request (``%(M)sms`` in calendar_app/gunicorn_conf.py).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

GROUPS = ("app (gunicorn)", "PostgreSQL (load-test DB)", "PostgreSQL (other)", "locust", "other")


_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")


def _busy(times: Any) -> float:
    """CPU seconds the machine spent busy (not idle, not waiting for I/O) since boot."""
    return float(sum(getattr(times, name, 0.0) for name in _BUSY))


@dataclass
class CpuFigures:
    """Cores used on average over a window, by group, and by the whole machine."""

    seconds: float
    cores: dict[str, float]
    machine: float
    load: tuple[float, float, float]


class CpuSampler:
    """Samples every process's CPU time once a second until stopped."""

    def __init__(self, app_pid: int, database: str, locust_pid: int | None = None) -> None:
        self.app_pid = app_pid
        self.database = database
        self.locust_pid = locust_pid
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _family(self, pid: int | None) -> set[int]:
        if pid is None:
            return set()
        try:
            root = psutil.Process(pid)
            return {pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.Error:
            return set()

    def _sample(self, initial: bool) -> None:
        app, load_gen = self._family(self.app_pid), self._family(self.locust_pid)
        marker = f" {self.database} "
        for process in psutil.process_iter(["name", "cmdline", "cpu_times", "create_time"]):
            info = process.info
            times = info.get("cpu_times")
            if times is None:
                continue
            used = float(times.user + times.system)
            if process.pid in app:
                group = GROUPS[0]
            elif info.get("name") == "postgres":
                command = " ".join(info.get("cmdline") or [])
                group = GROUPS[1] if marker in f"{command} " else GROUPS[2]
            elif process.pid in load_gen:
                group = GROUPS[3]
            else:
                group = GROUPS[4]
            if process.pid not in self.first:
                # A process born during the window counts from zero.
                born_inside = not initial and (info.get("create_time") or 0) >= self.started
                self.first[process.pid] = 0.0 if born_inside else used
            self.last[process.pid] = (group, used)

    def _run(self) -> None:
        while not self.stop_event.wait(1.0):
            try:
                self._sample(initial=False)
            except psutil.Error:
                continue

    def start(self) -> None:
        self.started = time.time()
        self.machine_start = _busy(psutil.cpu_times())
        self._sample(initial=True)
        self.thread.start()

    def set_locust(self, pid: int) -> None:
        self.locust_pid = pid

    def stop(self) -> CpuFigures:
        self.stop_event.set()
        self.thread.join()
        self._sample(initial=False)
        seconds = time.time() - self.started
        totals: dict[str, float] = defaultdict(float)
        for pid, (group, used) in self.last.items():
            totals[group] += max(0.0, used - self.first.get(pid, used))
        machine = (_busy(psutil.cpu_times()) - self.machine_start) / seconds
        cores = {group: totals.get(group, 0.0) / seconds for group in GROUPS}
        # "other" is what the machine did beyond the named groups (kernel threads, other
        # people's work), so the groups add up to the machine's busy time.
        named = sum(v for k, v in cores.items() if k != GROUPS[4])
        cores[GROUPS[4]] = max(0.0, machine - named)
        return CpuFigures(seconds, cores, machine, psutil.getloadavg())


# --- Server time per request type, from gunicorn's access log ------------------------------

_LINE = re.compile(
    r'^\S+ "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) \S+ (?P<ms>\d+)ms$'
)
# The request types as the server sees them (path and status; the same page may be asked
# for by different locust users, e.g. a week by a person, a helper or a caregiver).
SERVER_TYPES: tuple[tuple[str, str, re.Pattern[str], str], ...] = (
    ("feed 304", "GET", re.compile(r"^/feed/"), "304"),
    ("feed 200", "GET", re.compile(r"^/feed/"), "200"),
    ("login form", "GET", re.compile(r"^/login$"), ""),
    ("login (argon2)", "POST", re.compile(r"^/login$"), ""),
    ("week page", "GET", re.compile(r"^/people/\d+/week"), ""),
    ("visit page", "GET", re.compile(r"^/people/\d+/bookings/\d+"), ""),
    ("caregiver start", "GET", re.compile(r"^/$"), ""),
    ("unit day list", "GET", re.compile(r"^/unit/day"), ""),
    ("booking form", "GET", re.compile(r"^/people/\d+/book$"), ""),
    ("booking check", "POST", re.compile(r"^/people/\d+/book$"), "200"),
    ("booking book", "POST", re.compile(r"^/people/\d+/book$"), "302"),
    ("push PUT", "PUT", re.compile(r"^/api/v1/push/bookings/"), ""),
    ("push DELETE", "DELETE", re.compile(r"^/api/v1/push/bookings/"), ""),
)


@dataclass
class ServerTimes:
    """Milliseconds a worker spent per request, by type, and the answers that were errors."""

    ms: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unclassified: int = 0

    def median(self, name: str) -> float:
        values = self.ms.get(name)
        return float(statistics.median(values)) if values else 0.0

    def mean(self, name: str) -> float:
        values = self.ms.get(name)
        return float(statistics.fmean(values)) if values else 0.0


def server_times(log: Path, start: int, end: int) -> ServerTimes:
    """Classify the access lines between two byte offsets of gunicorn's log."""
    result = ServerTimes()
    with log.open("rb") as handle:
        handle.seek(start)
        chunk = handle.read(max(0, end - start)).decode("utf-8", "replace")
    for line in chunk.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        method, path, status = match["method"], match["path"], match["status"]
        for name, want_method, pattern, want_status in SERVER_TYPES:
            if method == want_method and pattern.match(path) and status.startswith(want_status):
                result.ms[name].append(int(match["ms"]))
                if status.startswith("5"):
                    result.errors[name] += 1
                break
        else:
            result.unclassified += 1
            if status.startswith("5"):
                result.errors["unclassified"] += 1
    return result
