"""``make loadtest``: seed, serve with the production configuration, load in steps, report.

    python -m loadtest.run [--steps 5,15,30,60,90,120] [--seconds 45] [--people 4000]
                           [--workers N] [--no-doc] [--keep-db]

1. ``loadtest.seed`` recreates the ``calendar_loadtest`` database on the local PostgreSQL
   server (``LOADTEST_DATABASE_SERVER`` names another) and fills it;
2. gunicorn starts as in production (``gunicorn -c python:calendar_app.gunicorn_conf``:
   gthread workers, the default count for this machine unless ``--workers``), on a free
   port, with a fixed secret key so that every worker accepts every session;
3. locust runs headless once per step of virtual users (after a warm-up that is not
   counted), each step for ``--seconds``, while the CPU of every process is sampled;
   then each user class alone, briefly and lightly, to price its requests in CPU;
4. gunicorn is stopped (SIGTERM, graceful), the database dropped unless ``--keep-db``, and
   the "Load test" section of docs/benchmarks.md rewritten between its markers.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from calendar_app.db import make_engine
from calendar_app.migrations import upgrade
from loadtest import report, seed
from loadtest.measure import GROUPS, CpuFigures, CpuSampler, ServerTimes, server_times

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


def _log(message: str) -> None:
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LocustRow:
    """One line of locust's statistics: a request type, or the aggregate."""

    method: str
    name: str
    count: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    mean: float


@dataclass
class Step:
    """One step of virtual users: locust's figures, the CPU, the server's own times."""

    users: int
    rows: list[LocustRow]
    total: LocustRow
    cpu: CpuFigures
    server: ServerTimes
    failures: list[tuple[str, str, int]]


@dataclass
class Calibration:
    """One user class alone, lightly loaded: the CPU its requests cost, by server type."""

    user_class: str
    users: int
    rows: list[LocustRow]
    requests: int
    app_seconds: float
    db_seconds: float
    server: ServerTimes


# Each user class alone, to learn what its requests cost in CPU (users, seconds).
CALIBRATION = (("Phone", 10), ("PersonVisit", 6), ("Caregiver", 6), ("ProviderSystem", 3))
CALIBRATION_SECONDS = 15


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def read_stats(prefix: Path) -> tuple[list[LocustRow], LocustRow, list[tuple[str, str, int]]]:
    """Locust's ``<prefix>_stats.csv`` and ``_failures.csv``."""
    rows: list[LocustRow] = []
    total: LocustRow | None = None
    with Path(f"{prefix}_stats.csv").open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            row = LocustRow(
                method=record["Type"],
                name=record["Name"],
                count=int(record["Request Count"]),
                failures=int(record["Failure Count"]),
                rps=_number(record["Requests/s"]),
                p50=_number(record["50%"]),
                p95=_number(record["95%"]),
                p99=_number(record["99%"]),
                mean=_number(record["Average Response Time"]),
            )
            if record["Name"] == "Aggregated":
                total = row
            else:
                rows.append(row)
    failures = []
    path = Path(f"{prefix}_failures.csv")
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                failures.append((record["Name"], record["Error"][:160], int(record["Occurrences"])))
    if total is None:
        raise SystemExit(f"locust wrote no aggregate line to {prefix}_stats.csv")
    return rows, total, failures


# --- Servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def gunicorn(
    url: URL, port: int, workers: int | None, log: Path, metrics: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with calendar_app.gunicorn_conf, until the block ends (SIGTERM, graceful)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALENDAR_APP_")}
    env |= {
        "CALENDAR_APP_DATABASE_URL": url.render_as_string(hide_password=False),
        # One key for every worker: a session made by one is read by the others.
        "CALENDAR_APP_SECRET_KEY": secrets.token_hex(32),
        "CALENDAR_APP_BIND": f"127.0.0.1:{port}",
        # Our own metrics directory: the default one is per user and emptied at start,
        # which would disturb another gunicorn of the same user.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    if workers:
        env["CALENDAR_APP_WEB_WORKERS"] = str(workers)
    command = [str(BIN / "gunicorn"), "-c", "python:calendar_app.gunicorn_conf"]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        ends = time.monotonic() + 60
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > ends:
                raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_locust(
    users_file: Path,
    base: str,
    users: int,
    seconds: int,
    prefix: Path,
    pace: float,
    sampler: CpuSampler | None = None,
    user_class: str | None = None,
) -> None:
    """One headless locust run; its statistics go to ``<prefix>_*.csv``."""
    command = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--host",
        base,
        "--csv",
        str(prefix),
        "--reset-stats",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if user_class:
        command.append(user_class)
    env = {**os.environ, "LOADTEST_USERS": str(users_file), "LOADTEST_PACE": str(pace)}
    with Path(f"{prefix}.log").open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own venv's locust
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        if sampler is not None:
            sampler.set_locust(process.pid)
        try:
            code = process.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise SystemExit(f"locust did not end; see {prefix}.log") from None
    # Locust exits 1 when any request failed; the failures are reported, not fatal.
    if code not in (0, 1):
        raise SystemExit(f"locust exited with {code}; see {prefix}.log")


def _cpu_seconds(pid: int) -> float:
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in family:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def drain(log: Path, app_pid: int, quiet: float = 2.0, limit: float = 90.0) -> None:
    """Wait until the server has finished what a step left queued: its access log has not
    grown for ``quiet`` seconds and its workers have been idle (under a twentieth of a
    core) for the last of them. A slow request holds no log line until it ends."""
    size, since = log.stat().st_size, time.monotonic()
    cpu, ends = _cpu_seconds(app_pid), since + limit
    while time.monotonic() < ends:
        time.sleep(1.0)
        current, used = log.stat().st_size, _cpu_seconds(app_pid)
        busy, cpu = used - cpu > 0.05, used
        if current != size or busy:
            size, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def measured(
    app_pid: int, log: Path, load: Callable[[CpuSampler], None]
) -> tuple[CpuFigures, ServerTimes]:
    """Run ``load`` while sampling CPU; return the CPU and the server times of its requests.

    The server first finishes what an overloaded step before left queued, so that neither
    its CPU nor its requests are counted here."""
    drain(log, app_pid)
    offset = log.stat().st_size
    sampler = CpuSampler(app_pid, seed.DATABASE)
    sampler.start()
    load(sampler)
    cpu = sampler.stop()
    time.sleep(0.5)  # the access log's last lines
    return cpu, server_times(log, offset, log.stat().st_size)


# --- The database around the run -----------------------------------------------------------


def table_scans(url: URL) -> dict[str, tuple[int, int, int]]:
    """Per table: sequential scans, rows they read, index scans (PostgreSQL's counters)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) "
                    "FROM pg_stat_user_tables"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def database_facts(url: URL) -> dict[str, Any]:
    """Sizes after the run, for the capacity estimate."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:

            def one(sql: str) -> Any:
                return conn.execute(text(sql)).scalar()

            return {
                "database_bytes": int(one("SELECT pg_database_size(current_database())")),
                "audit_rows": int(one("SELECT count(*) FROM audit_event")),
                "audit_bytes": int(one("SELECT pg_total_relation_size('audit_event')")),
                "feed_fetch_rows": int(
                    one("SELECT count(*) FROM audit_event WHERE action = 'feed.fetch'")
                ),
                "bookings": int(one("SELECT count(*) FROM booking")),
                "booking_bytes": int(one("SELECT pg_total_relation_size('booking')")),
                "sessions": int(one("SELECT count(*) FROM user_session")),
                "reminders": int(one("SELECT count(*) FROM reminder")),
                "postgresql": str(one("SHOW server_version")),
                "shared_buffers": str(one("SHOW shared_buffers")),
                "max_connections": str(one("SHOW max_connections")),
                "connections_now": int(one("SELECT count(*) FROM pg_stat_activity")),
            }
    finally:
        engine.dispose()


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count() or 1,
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: metadata.version(name)
            for name in ("gunicorn", "locust", "flask", "SQLAlchemy", "psycopg")
        },
    }


def idle_other_cpu(seconds: float = 5.0) -> float:
    """Cores the machine is busy with before the load test starts (others' work)."""
    before = sum(getattr(psutil.cpu_times(), n, 0.0) for n in ("user", "nice", "system"))
    time.sleep(seconds)
    after = sum(getattr(psutil.cpu_times(), n, 0.0) for n in ("user", "nice", "system"))
    return (after - before) / seconds


# --- The run ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Seed, serve, load step by step, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="5,15,30,60,90,120", help="virtual users per step")
    parser.add_argument("--seconds", type=int, default=45, help="length of each step")
    parser.add_argument("--warmup", type=int, default=20, help="seconds not counted")
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=None, help="default: gunicorn_conf's")
    parser.add_argument("--pace", type=float, default=1.0, help="multiplies think times")
    parser.add_argument("--server", default=os.environ.get("LOADTEST_DATABASE_SERVER"))
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    parser.add_argument("--keep-db", action="store_true", help="leave the database behind")
    args = parser.parse_args(argv)
    steps = [int(n) for n in args.steps.split(",") if n.strip()]

    stockholm = datetime.now(ZoneInfo("Europe/Stockholm"))
    if stockholm.hour == 23 and stockholm.minute >= 45:
        _log("warning: the run crosses midnight in Stockholm, when every feed renders anew")
    machine = machine_facts()
    machine["started"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine["load_before"] = psutil.getloadavg()
    machine["busy_before"] = idle_other_cpu()
    _log(
        f"machine: {machine['cpus']} CPUs, load {machine['load_before'][0]:.2f}, "
        f"{machine['busy_before']:.2f} cores busy before the run"
    )

    work = Path(tempfile.mkdtemp(prefix="personkalendern-loadtest-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = args.server or seed.DEFAULT_SERVER
    _log(f"seeding {args.people} people into {seed.DATABASE} (work files in {work})")
    url = seed.recreate_database(server, seed.DATABASE)
    engine = make_engine(url)
    try:
        upgrade(engine)
        seeded = seed.seed(engine, args.people, base_url=base)
    finally:
        engine.dispose()
    users_file = work / "users.json"
    seed.write_users(seeded.users, users_file)
    _log(f"seeded in {seeded.facts['total_seconds']} s: {seeded.facts}")
    scans_before = table_scans(url)

    log = work / "gunicorn.log"
    results: list[Step] = []
    calibrations: list[Calibration] = []
    workers = threads = 0
    problems: list[str] = []
    started = time.monotonic()
    try:
        with gunicorn(url, port, args.workers, log, work / "metrics") as master:
            workers = len(psutil.Process(master.pid).children())
            threads = importlib.import_module("calendar_app.gunicorn_conf").threads
            _log(f"gunicorn on {base}: {workers} workers x {threads} threads (gthread)")
            middle = steps[len(steps) // 2]
            _log(f"warm-up: {middle} users for {args.warmup} s (not counted)")
            run_locust(users_file, base, middle, args.warmup, work / "warmup", args.pace)
            for users in steps:
                _log(f"step: {users} users for {args.seconds} s")
                prefix = work / f"step-{users:03d}"
                cpu, times = measured(
                    master.pid,
                    log,
                    lambda sampler, n=users, p=prefix: run_locust(
                        users_file, base, n, args.seconds, p, args.pace, sampler
                    ),
                )
                rows, total, failures = read_stats(prefix)
                step = Step(users, rows, total, cpu, times, failures)
                results.append(step)
                _log(
                    f"  {total.rps:.1f} req/s, p50 {total.p50:.0f} / p95 {total.p95:.0f} / "
                    f"p99 {total.p99:.0f} ms, {total.failures} failed; cores: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in cpu.cores.items())
                )
            for user_class, users in CALIBRATION:
                _log(f"calibration: {user_class} alone, {users} users")
                prefix = work / f"alone-{user_class}"
                cpu, times = measured(
                    master.pid,
                    log,
                    lambda sampler, c=user_class, n=users, p=prefix: run_locust(
                        users_file, base, n, CALIBRATION_SECONDS, p, args.pace, sampler, c
                    ),
                )
                rows, total, _ = read_stats(prefix)
                used = (cpu.cores[GROUPS[0]] + cpu.cores[GROUPS[1]]) * cpu.seconds
                each = 1000 * used / max(1, total.count)
                _log(f"  {total.count} requests, {each:.1f} CPU ms each (app and PostgreSQL)")
                calibrations.append(
                    Calibration(
                        user_class,
                        users,
                        rows,
                        total.count,
                        cpu.cores[GROUPS[0]] * cpu.seconds,
                        cpu.cores[GROUPS[1]] * cpu.seconds,
                        times,
                    )
                )
    finally:
        elapsed = time.monotonic() - started
        if log.exists():
            problems = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "[ERROR]" in line or "Traceback" in line or "WORKER TIMEOUT" in line
            ]
    after = database_facts(url)
    scans_after = table_scans(url)
    if not args.keep_db:
        seed.drop_database(server, seed.DATABASE)
    machine["load_after"] = psutil.getloadavg()
    machine["workers"], machine["threads"] = workers, threads
    machine["load_seconds"] = round(elapsed)
    scans = {
        name: tuple(a - b for a, b in zip(counts, scans_before.get(name, (0, 0, 0)), strict=True))
        for name, counts in scans_after.items()
    }
    section = report.section(
        machine=machine,
        seeded=seeded.facts,
        after=after,
        steps=results,
        calibrations=calibrations,
        scans=scans,
        problems=problems,
        seconds=args.seconds,
        pace=args.pace,
    )
    print(section)
    if not args.no_doc:
        report.write_doc(section)
        _log(f"written to {report.DOC.relative_to(ROOT)}")
    _log(f"work files (locust CSVs, gunicorn log) kept in {work}")


if __name__ == "__main__":
    main()
