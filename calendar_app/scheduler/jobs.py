"""The periodic jobs: thin, idempotent, passing ids and a clock, never ORM objects."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlalchemy import select

from calendar_app.clock import Clock, SystemClock
from calendar_app.models import Person
from calendar_app.services.dispatch import DispatchSettings, dispatch_due
from calendar_app.services.reminders import replan
from calendar_app.sms import SmsSender

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stopping(app: Flask) -> threading.Event:
    """Set when this process is asked to stop: the jobs finish the item in hand, give back
    what they claimed and return (see :func:`run_foreground`)."""
    return app.extensions.setdefault("scheduler_stopping", threading.Event())


def send_due_reminders(app: Flask, clock: Callable[[], datetime] | None = None) -> int:
    """Send every reminder that is due (the dispatch job)."""
    clock = clock or app_clock(app)
    sender: SmsSender = app.extensions["sms_sender"]
    return dispatch_due(
        app.extensions["session_factory"],
        sender=sender,
        settings=DispatchSettings(public_base_url=app.config["PUBLIC_BASE_URL"]),
        clock=clock,
        lease=timedelta(seconds=app.config["REMINDER_LEASE_SECONDS"]),
        stopping=stopping(app).is_set,
    )


def extend_reminder_horizon(app: Flask, clock: Callable[[], datetime] | None = None) -> int:
    """Re-plan every person's reminders, so the rolling horizon moves on (hourly job)."""
    clock = clock or app_clock(app)
    factory = app.extensions["session_factory"]
    with factory() as session:
        people = list(session.scalars(select(Person.id).where(Person.deleted_utc.is_(None))))
        session.commit()
    for person_id in people:
        if stopping(app).is_set():
            break  # the next run (any scheduler's) goes on; planning is idempotent
        with factory() as session:
            from calendar_app.services.locking import begin_person_write

            begin_person_write(session, person_id)
            replan(session, person_id, now=clock())
            session.commit()
    return len(people)


def sync_due_sources(app: Flask, clock: Callable[[], datetime] | None = None) -> int:
    """Read every source that is due (the sync job); failures are recorded per source."""
    clock = clock or app_clock(app)
    from calendar_app.services import sync

    worker = app.extensions.setdefault("sync_worker", sync.worker_name())
    outcomes = sync.sync_due(
        app.extensions["session_factory"],
        sync.SyncPolicy.from_config(app.config),
        worker=worker,
        clock=clock,
        stopping=stopping(app).is_set,
    )
    return len(outcomes)


def app_clock(app: Flask) -> Callable[[], datetime]:
    """The app's one clock, as the function the jobs call for "now"."""
    clock: Clock = app.extensions["clock"]
    return clock.now


def build(
    app: Flask, scheduler: BaseScheduler, clock: Callable[[], datetime] | None = None
) -> BaseScheduler:
    """Add the jobs: each at most one instance at a time, missed runs coalesced.

    The jobs take "now" from ``clock`` (the app's clock unless given). APScheduler itself
    wakes them on the machine's clock, which is the only clock it has: so the first run of
    each, due at once, is timed by the system clock, not by the app's.
    """
    clock = clock or app_clock(app)
    first_run = SystemClock().now()
    common = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        send_due_reminders,
        "interval",
        seconds=app.config["SCHEDULER_DISPATCH_SECONDS"],
        args=(app, clock),
        id="send_due_reminders",
        next_run_time=first_run,
        **common,
    )
    scheduler.add_job(
        sync_due_sources,
        "interval",
        seconds=app.config["SYNC_SECONDS"],
        args=(app, clock),
        id="sync_due_sources",
        next_run_time=first_run,
        **common,
    )
    if app.config["SCHEDULER_REPLAN_MINUTES"]:
        scheduler.add_job(
            extend_reminder_horizon,
            "interval",
            minutes=app.config["SCHEDULER_REPLAN_MINUTES"],
            args=(app, clock),
            id="extend_reminder_horizon",
            next_run_time=first_run,
            **common,
        )
    return scheduler


def run_foreground(app: Flask, clock: Callable[[], datetime] | None = None) -> None:
    """``calendar-app scheduler``: run the jobs until SIGTERM or SIGINT, then stop well.

    Stopping finishes the message or source read in hand, gives back every claim not yet
    used (reminders and sources), waits for the running jobs and returns, so a restart or
    a scale-down never leaves work waiting for a lease to run out.
    """
    from calendar_app.services import sync

    # Stopping is not done in a signal handler: a Python handler runs in this thread
    # between any two bytecodes, and stopping from there deadlocked once in CI, having
    # interrupted the scheduler while it held a lock (its wake-up Event's own) that the
    # shutdown then needed. The handlers do nothing; Python's C-level handler writes each
    # signal's number to the wake-up socket, whichever thread the signal reached, and this
    # thread waits on that socket. (A signal mask with sigwait would leave a thread
    # started before the mask, such as a library's timer, free to take the signal.)
    wake_up, woken = socket.socketpair()
    wake_up.setblocking(False)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda *_: None)
    signal.set_wakeup_fd(wake_up.fileno())
    scheduler = build(app, BackgroundScheduler(timezone="UTC"), clock)
    scheduler.start()
    log.info("scheduler started")
    received = woken.recv(1)[0]
    while received not in _STOP_SIGNALS:
        received = woken.recv(1)[0]
    log.info("scheduler stopping (%s)", signal.Signals(received).name)
    stopping(app).set()
    # Finishes the item in hand and waits for the running jobs. A second signal while
    # stopping (systemd, then someone's Ctrl-C) only writes to the socket: it is ignored.
    scheduler.shutdown(wait=True)
    signal.set_wakeup_fd(-1)
    wake_up.close()
    woken.close()
    worker = app.extensions.get("sync_worker")
    released = sync.release_claims(app.extensions["session_factory"], worker) if worker else 0
    app.extensions["engine"].dispose()
    log.info("scheduler stopped; %d source claims given back", released)


def start_embedded(app: Flask, clock: Callable[[], datetime] | None = None) -> BaseScheduler | None:
    """Start the jobs in a background thread of this web process, once; never in gunicorn
    (its workers are many; run ``calendar-app scheduler`` beside them instead)."""
    if "gunicorn" in sys.modules:
        log.warning("CALENDAR_APP_SCHEDULER=embedded is ignored under gunicorn")
        return None
    if app.extensions.get("scheduler") is not None:
        return app.extensions["scheduler"]
    scheduler = build(app, BackgroundScheduler(timezone="UTC", daemon=True), clock)
    scheduler.start()
    app.extensions["scheduler"] = scheduler
    return scheduler
