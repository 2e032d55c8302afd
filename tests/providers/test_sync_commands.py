"""`calendar-app source add|list` and `calendar-app sync`, and the scheduler keeping a
calendar current on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from calendar_app.cli import main
from calendar_app.models import Booking, Source
from calendar_app.scheduler import jobs
from tests.support.helpers import PNR_ALVA, add_person, event, vcalendar, wait_for

ONE = vcalendar(event("v1", ":20261202T090000Z", ":20261202T100000Z", summary="Samtal"))
MOVED = vcalendar(event("v1", ":20261202T130000Z", ":20261202T140000Z", summary="Samtal"))


@pytest.fixture
def app_config() -> dict[str, object]:
    return {
        "SOURCE_ALLOWED_HOSTS": "127.0.0.1",
        "SYNC_TIMEOUT_SECONDS": 1,
        "SOURCE_CREDENTIAL_VXO": "lösen-från-miljön",
    }


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(main, list(args))


def test_source_add_list_and_sync_from_the_command_line(cli, session, feeds, now):
    add_person(session, now)
    url = feeds.set("/cli-secret-9f2.ics", ONE)

    added = cli(
        "source", "add", "--person", PNR_ALVA, "--unit", "Vuxenpsyk", "--kind", "region",
        "--url", url, "--name", "webbkalender", "--poll-minutes", "10",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added source ") and "Vuxenpsyk – webbkalender" in added.output

    listed = cli("source", "list")
    assert listed.exit_code == 0
    assert "\tnew\t" in listed.output and "http://127.0.0.1/…" in listed.output
    assert "cli-secret" not in listed.output and PNR_ALVA not in listed.output

    synced = cli("sync")
    assert synced.exit_code == 0, synced.output
    assert "ok, added 1, updated 0, cancelled 0" in synced.output
    assert cli("sync").output.strip() == "no source is due"
    source_id = session.scalars(select(Source.id).where(Source.person_id.is_not(None))).one()
    session.commit()
    again = cli("sync", "--source", str(source_id))
    assert "not changed since the last read" in again.output

    feeds.set("/cli-secret-9f2.ics", status=502)
    failed = cli("sync", "--source", str(source_id))
    assert failed.exit_code == 1
    assert "source.http" in failed.output and "cli-secret" not in failed.output
    assert "\tstale\t" in cli("source", "list").output or "stale" in cli("source", "list").output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--url", "http://10.0.0.5/a.ics"], "source.address_blocked"),
        (["--url", "gopher://x/a"], "source.url"),
        (["--url", "http://127.0.0.1:9/a.ics", "--poll-minutes", "1"], "source.poll_interval"),
        (["--url", "http://127.0.0.1:9/a.ics", "--password-from", "NOPE", "--username", "u"],
         "source.credential_unknown"),
    ],
)  # fmt: skip
def test_source_add_refuses_with_a_code_and_stores_nothing(cli, session, now, args, code):
    add_person(session, now)
    result = cli("source", "add", "--person", PNR_ALVA, *args)
    assert result.exit_code == 1
    assert f"error: {code}:" in result.output
    assert session.scalars(select(Source).where(Source.person_id.is_not(None))).all() == []
    session.commit()


def test_a_password_can_come_from_the_configuration(cli, session, feeds, now):
    add_person(session, now)
    url = feeds.set("/basic.ics", ONE)
    result = cli(
        "source", "add", "--person", PNR_ALVA, "--url", url,
        "--username", "kalender", "--password-from", "vxo",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    source = session.scalars(select(Source).where(Source.person_id.is_not(None))).one()
    session.commit()
    assert "lösen" not in source.secrets + source.settings
    assert '"password_from": "VXO"' in source.settings


def test_the_scheduler_keeps_the_calendar_current_on_its_own(app, session, feeds, now, clock):
    """A real APScheduler runs the sync job every second; the feed changes underneath."""
    person = add_person(session, now)
    url = feeds.set("/live.ics", ONE)
    cli_add = app.test_cli_runner().invoke(
        main, ["source", "add", "--person", PNR_ALVA, "--unit", "Vuxenpsyk", "--url", url,
               "--poll-minutes", "5"],
    )  # fmt: skip
    assert cli_add.exit_code == 0, cli_add.output
    app.config["SYNC_SECONDS"] = 1
    app.config["SCHEDULER_REPLAN_MINUTES"] = 0

    def starts() -> list[int]:
        session.expire_all()
        found = [
            b.start_utc.hour
            for b in session.scalars(select(Booking).where(Booking.person_id == person.id))
        ]
        session.commit()
        return found

    scheduler = jobs.build(app, BackgroundScheduler(timezone="UTC"))  # on the app's clock
    scheduler.start()
    try:
        wait_for(lambda: starts() == [9])
        feeds.set("/live.ics", MOVED)
        clock.advance(timedelta(minutes=10))  # the poll interval has passed
        wait_for(lambda: starts() == [13])
    finally:
        scheduler.shutdown(wait=True)
