"""The scheduler: real `calendar-app scheduler` processes share the outbox; each reminder
is sent once, and one a dead scheduler had claimed is sent after its lease.

The processes run on the system clock (moved by libfaketime in one CI run, theirs with
the test's), so these tests build their world at the system clock's now."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from calendar_app.clock import SystemClock
from calendar_app.models import Reminder, ReminderState
from calendar_app.services.dispatch import claim_due
from tests.support.helpers import people_with_a_visit_soon

PEOPLE = 25


def _people_with_a_visit_soon(session) -> None:
    """25 people, each with a visit in two hours: its reminder is due at once."""
    people_with_a_visit_soon(session, PEOPLE, "+4670111", SystemClock().now())


def _scheduler(url: str, log: Path, **settings: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "CALENDAR_APP_DATABASE_URL": url,
        "CALENDAR_APP_SCHEDULER_DISPATCH_SECONDS": "1",
        **{f"CALENDAR_APP_{k}": v for k, v in settings.items()},
    }
    command = [str(Path(sys.executable).parent / "calendar-app"), "scheduler"]
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_until_sent(session, expected: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.expire_all()
        sent = session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.state == ReminderState.SENT)
        )
        session.commit()
        if sent == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {sent} of {expected} reminders were sent")


def _stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_start(*logs: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not all(log.exists() and "scheduler started" in log.read_text() for log in logs):
        if time.monotonic() > deadline:
            raise AssertionError("a scheduler process did not start")
        time.sleep(0.2)


@pytest.mark.databases("sqlite", "postgresql")
def test_two_scheduler_processes_send_every_reminder_exactly_once(app, session, url, tmp_path):
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [_scheduler(url, log) for log in logs]
    try:
        _wait_for_start(*logs)  # both are running before there is anything to send
        _people_with_a_visit_soon(session)
        due = session.scalar(select(func.count()).select_from(Reminder))
        session.commit()
        assert due == PEOPLE
        _wait_until_sent(session, PEOPLE)
    finally:
        _stop(*processes)

    lines = [line for log in logs for line in log.read_text().splitlines() if "SMS to" in line]
    sids = session.scalars(select(Reminder.message_sid)).all()
    session.commit()
    assert len(lines) == PEOPLE  # each message left once, from one of the two processes
    assert len(set(sids)) == PEOPLE and None not in sids
    assert not any("+4670111" in line for line in lines)  # numbers are masked in the log


@pytest.mark.databases("sqlite", "postgresql")
def test_a_reminder_claimed_by_a_scheduler_that_died_is_sent_after_the_lease(
    app, session, url, tmp_path
):
    _people_with_a_visit_soon(session)
    with app.extensions["session_factory"]() as dead:
        # A scheduler claims with a 3-second lease, and dies before sending anything.
        claimed = claim_due(dead, now=SystemClock().now(), lease=timedelta(seconds=3))
    assert len(claimed) == PEOPLE

    log = tmp_path / "restarted.log"
    process = _scheduler(url, log, REMINDER_LEASE_SECONDS="3")
    try:
        _wait_until_sent(session, PEOPLE)
    finally:
        _stop(process)
    assert len([line for line in log.read_text().splitlines() if "SMS to" in line]) == PEOPLE


@pytest.mark.parametrize("app_config", [{"SCHEDULER": "embedded"}])
def test_the_embedded_scheduler_starts_once_with_the_first_request(app, client):
    assert "scheduler" not in app.extensions  # not at import, not at create_app
    client.get("/healthz")
    scheduler = app.extensions["scheduler"]
    try:
        client.get("/healthz")
        assert app.extensions["scheduler"] is scheduler
        assert {job.id for job in scheduler.get_jobs()} == {
            "send_due_reminders",
            "extend_reminder_horizon",
            "sync_due_sources",
        }
        assert all(job.max_instances == 1 and job.coalesce for job in scheduler.get_jobs())
    finally:
        scheduler.shutdown(wait=True)


@pytest.mark.databases("sqlite", "postgresql")
def test_a_scheduler_killed_mid_dispatch_loses_nothing(app, session, url, tmp_path):
    _people_with_a_visit_soon(session)
    first_log, second_log = tmp_path / "killed.log", tmp_path / "second.log"
    settings = {"REMINDER_LEASE_SECONDS": "3"}
    killed = _scheduler(url, first_log, **settings)
    try:
        deadline = time.monotonic() + 60
        while "SMS to" not in (first_log.read_text() if first_log.exists() else ""):
            assert time.monotonic() < deadline, "the first scheduler sent nothing"
            time.sleep(0.05)
    finally:
        killed.kill()  # SIGKILL, in the middle of its batch
        killed.wait(timeout=10)
    second = _scheduler(url, second_log, **settings)
    try:
        _wait_until_sent(session, PEOPLE)
    finally:
        _stop(second)

    sent = [
        line
        for log in (first_log, second_log)
        for line in log.read_text().splitlines()
        if "SMS to" in line
    ]
    # Nothing is lost. The one message that may go twice is the one the gateway had
    # accepted when the process died, before its outcome was committed.
    assert PEOPLE <= len(sent) <= PEOPLE + 1
    assert "SMS to" in second_log.read_text()


@pytest.mark.parametrize("app_config", [{"SCHEDULER": "embedded"}])
def test_the_embedded_scheduler_never_starts_inside_gunicorn(app, client, monkeypatch):
    # Gunicorn's workers are many: there the scheduler runs as its own process instead.
    monkeypatch.setitem(sys.modules, "gunicorn", types.ModuleType("gunicorn"))
    client.get("/healthz")
    client.get("/healthz")
    assert app.extensions.get("scheduler") is None


@pytest.mark.databases("sqlite", "postgresql")
def test_a_scheduler_told_twice_to_stop_still_stops_cleanly(app, url, tmp_path):
    log = tmp_path / "twice.log"
    process = _scheduler(url, log)
    try:
        _wait_for_start(log)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGINT)  # e.g. systemd, then someone's Ctrl-C
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "scheduler stopped" in log.read_text()
    assert "Traceback" not in log.read_text()
