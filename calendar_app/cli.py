"""The ``calendar-app`` command: a Flask CLI group with the service's own commands.

Success prints one summary line; failure prints ``error: <code>: <message>`` on stderr and
exits 1 (click exits 2 for usage errors). A personnummer is never printed whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import FlaskGroup
from sqlalchemy.orm import Session

from calendar_app import create_app
from calendar_app.db import session_scope
from calendar_app.domain import personnummer
from calendar_app.domain.bookings import SkippedEvent
from calendar_app.domain.dates import client_day
from calendar_app.domain.errors import DomainError
from calendar_app.providers import ProviderError
from calendar_app.services import accounts, feeds, tokens
from calendar_app.services import calendar as calendar_service
from calendar_app.services.access import Actor
from calendar_app.services.directory import add_person, find_person, parse_kind
from calendar_app.services.imports import NothingUsable, import_ics_file


def fail(code: str, message: str) -> None:
    """Print the stable error line and exit 1."""
    click.echo(f"error: {code}: {message}", err=True)
    sys.exit(1)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into ``error: code: message`` lines, never a traceback."""

    @wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (DomainError, ProviderError) as exc:
            fail(exc.code, exc.message)
        except OSError as exc:
            fail("file.unreadable", exc.strerror or "the file could not be read")
        except Exception as exc:  # the last line of defence: no traceback, no data
            fail("internal", f"unexpected {type(exc).__name__}; see the service log")
        return None

    return wrapped


def now_utc() -> datetime:
    """The current instant by the app's one clock."""
    return current_app.extensions["clock"].now()


@contextmanager
def _session() -> Iterator[Session]:
    with session_scope(current_app.extensions["session_factory"]) as session:
        yield session


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Personkalendern: one merged calendar per person."""


@main.command("init-db")
@reports_errors
def init_db() -> None:
    """Create or upgrade the database schema."""
    from calendar_app.migrations import upgrade

    upgrade(current_app.extensions["engine"])
    click.echo("database is at the newest schema")


# Where `make run` serves, for feed addresses when CALENDAR_APP_PUBLIC_BASE_URL is not set.
LOCAL_BASE_URL = "http://127.0.0.1:5000"


def _feed_url(token: str) -> str:
    base = current_app.config["PUBLIC_BASE_URL"] or LOCAL_BASE_URL
    return base + feeds.feed_path(token)


@main.command("demo")
@reports_errors
def demo() -> None:
    """Load the demo data (idempotent; bookings placed around the current week) and print
    a newly made feed address for the demo person (the one made last time stops)."""
    from calendar_app.demo import demo_feed, load_demo

    with _session() as session:
        result = load_demo(session, now=now_utc())
        token = demo_feed(session, now=now_utc())
    click.echo(result)
    click.echo(f"demo person's calendar feed (shown once): {_feed_url(token)}")


@main.group("feed")
def feed_group() -> None:
    """Calendar feeds people subscribe to."""


@feed_group.command("create")
@click.option("--person", "pnr", required=True, help="the person's personnummer")
@click.option(
    "--level",
    required=True,
    type=click.Choice(["full", "limited", "busy"]),
    help="everything, time and place, or busy only",
)
@click.option("--label", default="", help="the calendar's name in the phone")
@click.option("--alarms", is_flag=True, help="alarms at the person's reminder times")
@reports_errors
def feed_create(pnr: str, level: str, label: str, alarms: bool) -> None:
    """Make a feed and print only its address (shown once; only a hash is stored)."""
    with _session() as session:
        person = find_person(session, pnr, today=now_utc().date())
        made = feeds.create_feed(
            session,
            Actor.operator(),
            person.id,
            level=level,
            label=label,
            alarms=alarms,
            now=now_utc(),
        )
    click.echo(_feed_url(made.token))


@main.group("person")
def person_group() -> None:
    """Manage people."""


@person_group.command("add")
@click.option("--personnummer", "pnr", required=True, help="YYYYMMDD-XXXX and similar forms")
@click.option("--name", required=True)
@click.option("--phone", default=None, help="mobile number, e.g. 070-123 45 67")
@click.option("--timezone", default=None, help="IANA zone; default from the settings")
@reports_errors
def person_add(pnr: str, name: str, phone: str | None, timezone: str | None) -> None:
    """Register a person."""
    zone = timezone or current_app.config["DEFAULT_TIMEZONE"]
    try:
        ZoneInfo(zone)
    except Exception:
        fail("timezone.unknown", "the time zone is not an IANA zone such as Europe/Stockholm")
    with _session() as session:
        person = add_person(
            session, pnr_text=pnr, name=name, phone_text=phone, timezone=zone, now=now_utc()
        )
        click.echo(f"added person {person.id} ({personnummer.masked(person.personnummer)})")


@person_group.command("protect")
@click.option("--personnummer", "pnr", required=True, help="the person's personnummer")
@click.option("--reference", required=True, help="the decision's reference, e.g. Skatteverket's")
@click.option("--end", is_flag=True, help="record that the protection has ended")
@reports_errors
def person_protect(pnr: str, reference: str, end: bool) -> None:
    """Record that a person has protected personal data (or, with --end, that it ended);
    audited in the person's log, in effect at once."""
    from calendar_app.services.protection import set_protected_identity

    with _session() as session:
        person = find_person(session, pnr, today=now_utc().date())
        set_protected_identity(
            session,
            Actor.operator(),
            person.id,
            protected=not end,
            reference=reference,
            now=now_utc(),
        )
        state = "no longer has" if end else "has"
        masked = personnummer.masked(person.personnummer)
        click.echo(f"person {person.id} ({masked}) {state} protected personal data")


@main.command("import")
@click.option("--person", "pnr", required=True, help="the person's personnummer")
@click.option("--provider", "provider_name", required=True, help="the unit's name")
@click.option("--kind", default=None, help="region, municipality, other or personal")
@click.option("--source", "source_name", default="file", show_default=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def import_command(
    pnr: str, provider_name: str, kind: str | None, source_name: str, file: Path
) -> None:
    """Import an iCalendar FILE into the person's calendar."""
    provider_kind = parse_kind(kind) if kind else None
    data = file.read_bytes()
    now = now_utc()
    try:
        with _session() as session:
            person = find_person(session, pnr, today=now.date())
            summary = import_ics_file(
                session,
                person_id=person.id,
                provider_name=provider_name,
                provider_kind=provider_kind,
                source_name=source_name,
                data=data,
                now=now,
                max_bytes=current_app.config["MAX_ICS_BYTES"],
            )
    except NothingUsable as refused:
        _echo_skipped(refused.skipped)  # why each event was unreadable, then the error
        raise
    _echo_skipped(summary.skipped)
    click.echo(summary.line())


def _echo_skipped(skipped: tuple[SkippedEvent, ...]) -> None:
    for event in skipped:
        click.echo(f"skipped {event.uid or '(no UID)'}: {event.code}: {event.reason}", err=True)


def _parse_date(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise DomainError("range.date_format", f"--{name} must be a date as YYYY-MM-DD") from None
    return client_day(day, f"--{name}")


@main.command("calendar")
@click.option("--person", "pnr", required=True)
@click.option("--from", "first", required=True, help="first day (inclusive), YYYY-MM-DD")
@click.option("--to", "end", required=True, help="last day (exclusive), YYYY-MM-DD")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text")
@reports_errors
def calendar_command(pnr: str, first: str, end: str, fmt: str) -> None:
    """Print the person's merged calendar for a date range."""
    first_day, end_day = _parse_date(first, "from"), _parse_date(end, "to")
    now = now_utc()
    with _session() as session:
        person = find_person(session, pnr, today=now.date())
        view = calendar_service.read_calendar(
            session,
            Actor.operator(),
            person.id,
            first_day,
            end_day,
            now=now,
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    zone = ZoneInfo(view.timezone)
    if fmt == "json":
        items = [calendar_service.occurrence_json(o, zone) for o in view.occurrences]
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        for occ in view.occurrences:
            click.echo(calendar_service.occurrence_text(occ, zone))


@main.group("token")
def token_group() -> None:
    """API tokens for provider systems and scripts."""


def _unit_id(session: Session, unit: str) -> int:
    from sqlalchemy import select

    from calendar_app.models import Provider

    query = select(Provider.id).where(
        Provider.id == int(unit) if unit.isdigit() else Provider.name == unit
    )
    found = session.scalars(query).first()
    if found is None:
        raise DomainError("unit.not_found", f"no unit {unit!r}")
    return int(found)


@token_group.command("create")
@click.option("--unit", required=True, help="the unit's name or id")
@click.option("--name", required=True, help="which system or script uses it")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(list(tokens.SCOPES)),
    help="repeat for several",
)
@reports_errors
def token_create(unit: str, name: str, scopes: tuple[str, ...]) -> None:
    """Make a token and print it once (only its hash is stored)."""
    with _session() as session:
        made = tokens.create_token(
            session,
            name=name,
            provider_id=_unit_id(session, unit),
            scopes=list(scopes),
            created_by=Actor.operator().label,
            now=now_utc(),
        )
    click.echo(made.secret)


@token_group.command("list")
@reports_errors
def token_list() -> None:
    """One line per token: id, name, unit, scopes, state, last use."""
    with _session() as session:
        for row in tokens.list_tokens(session):
            state = f"revoked {row.revoked_utc:%Y-%m-%d %H:%M}Z" if row.revoked_utc else "active"
            used = f"{row.last_used_utc:%Y-%m-%d %H:%M}Z" if row.last_used_utc else "never"
            click.echo(
                f"{row.id}\t{row.name}\t{row.provider.name}\t{row.scopes}\t{state}\t"
                f"last used {used}\t{row.prefix}…"
            )


@token_group.command("revoke")
@click.argument("token_id", type=int)
@reports_errors
def token_revoke(token_id: int) -> None:
    """Revoke a token: its next request is refused."""
    with _session() as session:
        row = tokens.revoke_token(session, token_id, now=now_utc())
    click.echo(f"token {row.id} ({row.name}) is revoked")


@main.group("user")
def user_group() -> None:
    """Accounts."""


@user_group.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="the name others see")
@click.option(
    "--role",
    type=click.Choice(["admin", "caregiver"]),
    required=True,
    help="people and helpers get their accounts through e-identification or the settings page",
)
@click.option("--unit", help="the caregiver's unit (name or id)")
@click.password_option(
    help="asked for, twice, when not given; at least 10 characters and hard to guess"
)
@reports_errors
def user_add(username: str, display_name: str, role: str, unit: str | None, password: str) -> None:
    """Make an administrator's or caregiver's account with a password (the first
    administrator of a new installation is made this way)."""
    from sqlalchemy import func, select

    from calendar_app.models import Role, User

    with _session() as session:
        taken = select(User.id).where(func.lower(User.username) == username.strip().lower())
        if not username.strip() or session.scalars(taken).first() is not None:
            raise DomainError("user.username", "choose a user name that is not taken")
        if role == "caregiver" and not unit:
            raise DomainError("user.unit_missing", "a caregiver belongs to one unit: give --unit")
        accounts.add_user(
            session,
            username=username,
            display_name=display_name.strip(),
            password=password,
            role=Role(role),
            provider_id=_unit_id(session, unit) if role == "caregiver" and unit else None,
        )
        session.commit()
    click.echo(f"{username.strip().lower()} can now sign in as {role}")


@user_group.command("set-staff-id")
@click.argument("username")
@click.argument("staff_id")
@reports_errors
def user_set_staff_id(username: str, staff_id: str) -> None:
    """Connect a caregiver's or administrator's account to their id in the identity broker."""
    with _session() as session:
        accounts.set_staff_id(session, username, staff_id)
    click.echo(f"{username} signs in with e-identification as {staff_id}")


@main.group("source")
def source_group() -> None:
    """Sources read on a schedule (a unit's or the person's own published calendar)."""


@source_group.command("add")
@click.option("--person", "pnr", required=True, help="the person's personnummer")
@click.option("--url", required=True, help="https:// or webcal:// address of the calendar")
@click.option(
    "--adapter",
    type=click.Choice(["ics_url", "caldav", "fhir", "rivta"]),
    default="ics_url",
    show_default=True,
    help="a published calendar (ics_url), a CalDAV calendar or account (caldav), a FHIR "
    "R4 server's base address (fhir), or the national platform's crm:scheduling "
    "GetSubjectOfCareSchedule endpoint (rivta); fhir and rivta find the person by personnummer",
)
@click.option(
    "--logical-address",
    default="",
    help="rivta: the producer's logical address (the facility's HSA-id)",
)
@click.option(
    "--healthcare-facility",
    default="",
    help="rivta: the facility's HSA-id asked for (default: the logical address)",
)
@click.option("--unit", default=None, help="the care unit's name; leave out for a personal one")
@click.option("--kind", default=None, help="a new unit's kind: region, municipality or other")
@click.option("--name", default="", help="the source's name (default: the address's host)")
@click.option("--poll-minutes", type=int, default=None, help="how often to read it")
@click.option("--username", default="", help="for a calendar behind HTTP Basic sign-in")
@click.option(
    "--password-from",
    default="",
    help="NAME of the setting CALENDAR_APP_SOURCE_CREDENTIAL_NAME holding the password "
    "(for fhir without --username: a bearer token)",
)
@reports_errors
def source_add(
    pnr: str,
    url: str,
    adapter: str,
    unit: str | None,
    kind: str | None,
    name: str,
    poll_minutes: int | None,
    username: str,
    password_from: str,
    logical_address: str,
    healthcare_facility: str,
) -> None:
    """Add a source for the person; it is read at the scheduler's next look."""
    from calendar_app.services import sources, sync

    fields = {"url": url, "username": username}
    if adapter == "rivta":
        fields |= {"logical_address": logical_address, "healthcare_facility": healthcare_facility}
    if password_from:
        fields["password_from"] = password_from
    now = now_utc()
    with _session() as session:
        person = find_person(session, pnr, today=now.date())
        source = sources.add_source(
            session,
            Actor.operator(),
            person_id=person.id,
            adapter=adapter,
            fields=fields,
            unit_name=unit,
            unit_kind=parse_kind(kind) if kind else None,
            name=name,
            poll_minutes=poll_minutes,
            policy=sync.SyncPolicy.from_config(current_app.config),
            now=now,
        )
        click.echo(f"added source {source.id} ({source.provider.name} – {source.name})")


@source_group.command("list")
@reports_errors
def source_list() -> None:
    """One line per source: id, unit, person id, address, state, last success, last error."""
    from calendar_app.services import sources

    with _session() as session:
        for row in sources.list_sources(session):
            done = f"{row.last_success_utc:%Y-%m-%d %H:%M}Z" if row.last_success_utc else "never"
            error = f"\t{row.last_error_code}" if row.state in ("stale", "failing") else ""
            paused = " (paused)" if not row.enabled else ""
            held = f" review {row.pending_review_id}" if row.pending_review_id else ""
            click.echo(
                f"{row.id}\t{row.unit} – {row.name}\tperson {row.person_id}\t{row.display}\t"
                f"{row.state}{paused}{held}\tlast success {done}{error}"
            )


@main.command("sync")
@click.option("--source", "source_id", type=int, default=None, help="read only this source")
@reports_errors
def sync_command(source_id: int | None) -> None:
    """Read every due source once (or the one given, due or not); exit 1 if any failed."""
    from calendar_app.services import sync

    outcomes = sync.sync_due(
        current_app.extensions["session_factory"],
        sync.SyncPolicy.from_config(current_app.config),
        worker=f"cli:{sync.worker_name()}",
        clock=now_utc,
        source_id=source_id,
    )
    if source_id is not None and not outcomes:
        fail(
            "source.busy",
            f"source {source_id} is not a synced source, is paused, or is being read",
        )
    for outcome in outcomes:
        click.echo(outcome.line(), err=bool(outcome.error_code))
    if any(o.error_code for o in outcomes):
        sys.exit(1)
    if not outcomes:
        click.echo("no source is due")


@main.command("scheduler")
def scheduler_command() -> None:
    """Run the reminder jobs in the foreground (several may run; rows are claimed)."""
    import logging

    from calendar_app.scheduler.jobs import run_foreground

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_foreground(current_app._get_current_object())  # type: ignore[attr-defined]
