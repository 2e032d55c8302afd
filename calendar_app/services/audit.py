"""Reading the audit log: the person's "Vem har sett min kalender?" and the admin export."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import AuditEvent, Person, Role
from calendar_app.services.access import Actor, authorize
from calendar_app.services.calendar import check_range, local_midnight


def _rows(
    session: Session, person: Person, first_day: date, end_day: date, *, newest_first: bool
) -> list[AuditEvent]:
    zone = ZoneInfo(person.timezone)
    order = (
        (AuditEvent.at_utc.desc(), AuditEvent.id.desc())
        if newest_first
        else (AuditEvent.at_utc, AuditEvent.id)
    )
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.person_id == person.id,
            AuditEvent.at_utc >= local_midnight(first_day, zone),
            AuditEvent.at_utc < local_midnight(end_day, zone),
        )
        .order_by(*order)
    )
    return list(session.scalars(query))


def read_audit_log(
    session: Session,
    actor: Actor,
    person_id: int,
    first_day: date,
    end_day: date,
    *,
    now: datetime,
    max_days: int,
) -> list[AuditEvent]:
    """Who looked at the person's data in [first_day, end_day), newest first."""
    check_range(first_day, end_day, max_days)
    authorize(session, actor, person_id, "audit.read", now=now)
    person = session.get(Person, person_id)
    assert person is not None
    rows = _rows(session, person, first_day, end_day, newest_first=True)
    session.commit()
    return rows


@dataclass(frozen=True)
class LogLine:
    """One line of "Vem har sett min kalender?": one audit row, or a feed's fetches on one
    day taken together (``count`` of them, from ``first`` to ``at``)."""

    at: datetime  # the newest row's instant
    actor_label: str
    actor_role: str
    actor_unit: str
    action: str
    count: int = 1
    first: datetime | None = None  # the oldest fetch of the day, for a feed's line
    addresses: int = 1


FEED_FETCH = "feed.fetch"


def _feed_of(row: AuditEvent) -> str:
    # services.feeds.record_fetch writes "feed {id}, {level}, {method} {status}".
    return row.detail.split(",", 1)[0]


def log_lines(rows: Sequence[AuditEvent], timezone: str) -> list[LogLine]:
    """The rows of :func:`read_audit_log` (newest first) as the person reads them.

    A phone polls a feed every quarter of an hour or so: about a hundred rows a day that
    would bury every caregiver's read. A feed's fetches on one local day are one line with
    their count, first and last time and how many addresses fetched; every other row is a
    line of its own. The rows themselves stay as they are (the API and the export).
    """
    zone = ZoneInfo(timezone)
    lines: list[LogLine] = []
    days: dict[tuple[date, str, str, str], int] = {}  # a feed's day -> its line's index
    seen: dict[int, set[str]] = {}  # a feed line's index -> the addresses that fetched
    for row in rows:
        if row.action != FEED_FETCH:
            lines.append(
                LogLine(row.at_utc, row.actor_label, row.actor_role, row.actor_unit, row.action)
            )
            continue
        key = (row.at_utc.astimezone(zone).date(), row.actor_role, row.actor_label, _feed_of(row))
        index = days.get(key)
        if index is None:
            days[key] = len(lines)
            seen[len(lines)] = {row.remote_addr}
            lines.append(
                LogLine(
                    row.at_utc,
                    row.actor_label,
                    row.actor_role,
                    row.actor_unit,
                    row.action,
                    first=row.at_utc,
                )
            )
            continue
        seen[index].add(row.remote_addr)
        lines[index] = replace(
            lines[index],
            count=lines[index].count + 1,
            first=row.at_utc,  # older: the rows come newest first
            addresses=len(seen[index]),
        )
    return lines


EXPORT_COLUMNS = ("at_utc", "actor", "role", "unit", "action", "detail", "from_address")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV
# injection); an apostrophe before it makes the cell plain text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def export_audit_csv(
    session: Session,
    actor: Actor,
    person_id: int,
    first_day: date,
    end_day: date,
    *,
    max_days: int,
) -> str:
    """An administrator's CSV export of one person's audit log for a period."""
    if actor.role != Role.ADMIN:
        raise DomainError("access.denied", "only an administrator exports the audit log")
    check_range(first_day, end_day, max_days)
    person = session.get(Person, person_id)
    if person is None:
        raise DomainError("person.not_found", "no such person")
    rows = _rows(session, person, first_day, end_day, newest_first=False)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        cells = (
            row.at_utc.isoformat(),
            row.actor_label,
            row.actor_role,
            row.actor_unit,
            row.action,
            row.detail,
            row.remote_addr,
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    session.commit()
    return out.getvalue()
