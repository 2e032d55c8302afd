"""The periodic jobs: thin, idempotent, passing ids and a clock, never ORM objects."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import select

from calendar_app.db import now_utc
from calendar_app.models import Person
from calendar_app.services.dispatch import DispatchSettings, dispatch_due
from calendar_app.services.reminders import replan
from calendar_app.sms import SmsSender

log = logging.getLogger(__name__)


def send_due_reminders(app: Flask, clock: Callable[[], datetime] = now_utc) -> int:
    """Send every reminder that is due (the dispatch job)."""
    sender: SmsSender = app.extensions["sms_sender"]
    return dispatch_due(
        app.extensions["session_factory"],
        sender=sender,
        settings=DispatchSettings(public_base_url=app.config["PUBLIC_BASE_URL"]),
        clock=clock,
        lease=timedelta(seconds=app.config["REMINDER_LEASE_SECONDS"]),
    )


def extend_reminder_horizon(app: Flask, clock: Callable[[], datetime] = now_utc) -> int:
    """Re-plan every person's reminders, so the rolling horizon moves on (hourly job)."""
    factory = app.extensions["session_factory"]
    with factory() as session:
        people = list(session.scalars(select(Person.id).where(Person.deleted_utc.is_(None))))
        session.commit()
    for person_id in people:
        with factory() as session:
            from calendar_app.services.locking import begin_person_write

            begin_person_write(session, person_id)
            replan(session, person_id, now=clock())
            session.commit()
    return len(people)


def sync_due_sources(app: Flask, clock: Callable[[], datetime] = now_utc) -> int:
    """Read every source that is due (the sync job); failures are recorded per source."""
    from calendar_app.services import sync

    worker = app.extensions.setdefault("sync_worker", sync.worker_name())
    outcomes = sync.sync_due(
        app.extensions["session_factory"],
        sync.SyncPolicy.from_config(app.config),
        worker=worker,
        clock=clock,
    )
    return len(outcomes)


def build(app: Flask, scheduler: BaseScheduler, clock: Callable[[], datetime]) -> BaseScheduler:
    """Add the jobs: each at most one instance at a time, missed runs coalesced."""
    common = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        send_due_reminders,
        "interval",
        seconds=app.config["SCHEDULER_DISPATCH_SECONDS"],
        args=(app, clock),
        id="send_due_reminders",
        next_run_time=clock(),
        **common,
    )
    scheduler.add_job(
        sync_due_sources,
        "interval",
        seconds=app.config["SYNC_SECONDS"],
        args=(app, clock),
        id="sync_due_sources",
        next_run_time=clock(),
        **common,
    )
    if app.config["SCHEDULER_REPLAN_MINUTES"]:
        scheduler.add_job(
            extend_reminder_horizon,
            "interval",
            minutes=app.config["SCHEDULER_REPLAN_MINUTES"],
            args=(app, clock),
            id="extend_reminder_horizon",
            next_run_time=clock(),
            **common,
        )
    return scheduler


def run_foreground(app: Flask, clock: Callable[[], datetime] = now_utc) -> None:
    """``calendar-app scheduler``: run the jobs until stopped."""
    scheduler = build(app, BlockingScheduler(timezone="UTC"), clock)
    log.info("scheduler started")
    scheduler.start()


def start_embedded(app: Flask, clock: Callable[[], datetime] = now_utc) -> BaseScheduler | None:
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
