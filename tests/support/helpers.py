"""Small builders shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from calendar_app.models import Person, ProviderKind
from calendar_app.services.imports import ImportSummary, import_ics_file

PNR_ALVA = "199001012385"  # Skatteverket test personnummer
PNR_BO = "198001022386"


def add_person(session: Session, now: datetime, pnr: str = PNR_ALVA, name: str = "Alva") -> Person:
    person = Person(personnummer=pnr, name=name, timezone="Europe/Stockholm", created_at=now)
    session.add(person)
    session.commit()
    return person


def vcalendar(*events: str, method: str | None = None, extra: str = "") -> bytes:
    """A VCALENDAR around VEVENT bodies (each given without BEGIN/END lines)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    if extra:
        lines.append(extra)
    for body in events:
        lines += ["BEGIN:VEVENT", *[ln.strip() for ln in body.strip().splitlines()], "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def event(uid: str, start: str, end: str, summary: str = "Besök", **props: str) -> str:
    """A VEVENT body with times given as they appear after DTSTART (e.g. ';TZID=...:2026...')."""
    lines = [f"UID:{uid}", f"DTSTART{start}", f"DTEND{end}", f"SUMMARY:{summary}"]
    lines += [f"{k.replace('_', '-')}:{v}" for k, v in props.items()]
    return "\n".join(lines)


def do_import(
    session: Session,
    person: Person,
    data: bytes,
    now: datetime,
    provider: str = "Vuxenpsykiatrin Växjö",
    kind: ProviderKind | None = ProviderKind.REGION,
    source: str = "file",
) -> ImportSummary:
    return import_ics_file(
        session,
        person_id=person.id,
        provider_name=provider,
        provider_kind=kind,
        source_name=source,
        data=data,
        now=now,
        max_bytes=10 * 1024 * 1024,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    """Wait until ``condition()`` holds (a real scheduler doing its work), or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the scheduler did not get there in time")


def forget_who_was_logged_in(page) -> None:
    """Leave the page, then drop the cookies: a load still under way on the old page could
    otherwise answer after the cookies are cleared and set the old session again."""
    page.goto("about:blank")
    page.context.clear_cookies()


def people_with_a_visit_soon(
    session: Session, count: int, phone_prefix: str, now: datetime
) -> None:
    """``count`` people with phones ``<phone_prefix>0000``, ``…0001``, …, each with a visit
    two hours after ``now`` (a minute apart): its reminder is due at once."""
    for number in range(count):
        person = Person(
            personnummer=f"1990010{number:05d}",
            name=f"Person {number}",
            phone_e164=f"{phone_prefix}{number:04d}",
            timezone="Europe/Stockholm",
            created_at=now,
        )
        session.add(person)
        session.commit()
        at = now + timedelta(hours=2, minutes=number)
        end = at + timedelta(minutes=30)
        body = vcalendar(event(f"v{number}", f":{at:%Y%m%dT%H%M%SZ}", f":{end:%Y%m%dT%H%M%SZ}"))
        do_import(session, person, body, now)


def recent_calendar(session: Session, now: datetime, zone: str = "Europe/Stockholm") -> Person:
    """A person with two visits two and three days after ``now`` ("b" is the "Samtal")."""
    person = add_person(session, now, name="Alva Lindqvist")
    person.timezone = zone
    session.commit()
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    do_import(
        session,
        person,
        vcalendar(
            event("a", f":{start:%Y%m%dT%H%M%SZ}", f":{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}"),
            event(
                "b",
                f":{start + timedelta(days=1):%Y%m%dT%H%M%SZ}",
                f":{start + timedelta(days=1, hours=1):%Y%m%dT%H%M%SZ}",
                "Samtal",
            ),
        ),  # fmt: skip
        now,
    )
    return person
