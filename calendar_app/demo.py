"""Demo data a newcomer learns from: one person in Kronoberg and the units around her.

Bookings are placed relative to the current week, so the demo never goes stale, and are
delivered as iCalendar files through the same import as real sources. Running it again
changes nothing within the same week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.models import (
    Feed,
    HelperBasis,
    HelperGrant,
    Person,
    Provider,
    ProviderKind,
    Role,
    User,
    ViewLevel,
)
from calendar_app.services.access import Actor
from calendar_app.services.accounts import add_user
from calendar_app.services.directory import get_or_add_provider
from calendar_app.services.feeds import create_feed
from calendar_app.services.imports import import_ics_file

ZONE = ZoneInfo("Europe/Stockholm")
PERSONNUMMER = "199001012385"  # a Skatteverket test personnummer
LOGINS = {
    "alva": ("demo-alva-2026", Role.PERSON, "Alva Lindqvist"),
    "karin": ("demo-karin-2026", Role.CAREGIVER, "Karin Berg"),
    "maria": ("demo-maria-2026", Role.HELPER, "Maria Lindqvist"),
    "admin": ("demo-admin-2026", Role.ADMIN, "Administratör"),
}


@dataclass(frozen=True)
class Unit:
    name: str
    kind: ProviderKind
    phone: str
    address: str
    contact: str = ""


PSYKIATRI = Unit(
    "Vuxenpsykiatrin Växjö",
    ProviderKind.REGION,
    "0470-58 60 00",
    "Sigfridsvägen 9, 352 46 Växjö",
    "Sara Nilsson, sjuksköterska",
)
VARDCENTRAL = Unit(
    "Vårdcentralen Teleborg",
    ProviderKind.REGION,
    "0470-58 79 00",
    "Bollvägen 2, 352 55 Växjö",
    "Receptionen",
)
BOENDESTOD = Unit(
    "Boendestöd Växjö kommun",
    ProviderKind.MUNICIPALITY,
    "0470-410 00",
    "Västra Esplanaden 18, 352 31 Växjö",
    "Ali Hassan, boendestödjare",
)
OMBUD = Unit(
    "Personligt ombud Kronoberg",
    ProviderKind.MUNICIPALITY,
    "0470-410 10",
    "Kungsgatan 8, 352 33 Växjö",
    "Eva Sjöberg, personligt ombud",
)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


def _event(
    uid: str, start: datetime, minutes: int, title: str, place: str, **extra: str
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("UID", f"{uid}@demo.personkalendern.se")
    event.add("DTSTART", start)
    event.add("DTEND", start + timedelta(minutes=minutes))
    event.add("SUMMARY", title)
    event.add("LOCATION", place)
    for name, value in extra.items():
        event.add(name.replace("_", "-"), value)
    return event


def _calendar(*events: icalendar.Event) -> bytes:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//Personkalendern//demo//SV")
    cal.add("VERSION", "2.0")
    for event in events:
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def _last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def clock_change_sundays(after: date) -> tuple[date, date]:
    """The next Sundays on which Sweden moves its clocks forward (March) and back
    (October), on or after ``after``: the demo has visits on both weekends."""
    spring = _last_sunday(after.year, 3)
    autumn = _last_sunday(after.year, 10)
    if spring < after:
        spring = _last_sunday(after.year + 1, 3)
    if autumn < after:
        autumn = _last_sunday(after.year + 1, 10)
    return spring, autumn


def demo_files(monday: date) -> dict[Unit, bytes]:
    """Each unit's bookings for the weeks around ``monday`` (the current week's Monday),
    and a weekend visit on each of the next clock changes."""
    nxt = monday + timedelta(days=7)
    spring, autumn = clock_change_sundays(monday)
    cancelled = _event(
        "vc-2",
        _at(nxt + timedelta(days=1), 10),
        30,
        "Läkarbesök",
        VARDCENTRAL.address,
        STATUS="CANCELLED",
    )
    series = _event(
        "boendestod-tisdag", _at(monday - timedelta(days=27), 13), 60, "Boendestöd", "Hemma"
    )
    series.add("RRULE", {"FREQ": "WEEKLY", "BYDAY": "TU"})
    moved = _event(
        "boendestod-tisdag",
        _at(nxt + timedelta(days=1), 14),
        60,
        "Boendestöd (flyttad en timme)",
        "Hemma",
    )
    moved.add("RECURRENCE-ID", _at(nxt + timedelta(days=1), 13))
    return {
        # The overlap: Wednesday 10-11 at the clinic and 10.30-11.30 with the ombudsman.
        PSYKIATRI: _calendar(
            _event(
                "psyk-1",
                _at(monday + timedelta(days=2), 10),
                60,
                "Återbesök, sjuksköterska",
                PSYKIATRI.address,
                X_PK_PRACTITIONER="Sara Nilsson",
                X_PK_CANCELLATION="Avboka senast 24 timmar före",
                X_PK_NO_SHOW_FEE="Uteblivet besök: 400 kr",
            ),
            _event(
                "psyk-2",
                _at(nxt, 9),
                30,
                "Telefonsamtal med läkare",
                "Telefon",
                X_PK_MODE="phone",
                X_PK_PRACTITIONER="Dr. Johan Ek",
            ),
        ),
        VARDCENTRAL: _calendar(
            _event(
                "vc-1",
                _at(nxt + timedelta(days=3), 8, 30),
                20,
                "Provtagning",
                VARDCENTRAL.address,
                X_PK_TRANSPORT="TRUE",
            ),
            cancelled,
        ),
        BOENDESTOD: _calendar(
            series,
            moved,
            # Sunday morning after the clocks went forward at 02.00, and after they went
            # back at 03.00: the local time must stay 10.00 in every calendar.
            _event("helg-var", _at(spring, 10), 60, "Helgbesök, boendestöd", "Hemma"),
            _event("helg-host", _at(autumn, 10), 60, "Helgbesök, boendestöd", "Hemma"),
        ),
        OMBUD: _calendar(
            _event(
                "ombud-1",
                _at(monday + timedelta(days=2), 10, 30),
                60,
                "Möte med personligt ombud",
                OMBUD.address,
            ),
            _event(
                "ombud-2",
                _at(nxt + timedelta(days=4), 15),
                60,
                "Ansökan bostadstillägg",
                OMBUD.address,
                X_PK_INTERPRETER="arabiska",
            ),
        ),
    }


def load_demo(session: Session, *, now: datetime) -> str:
    """Create or refresh the demo; return a one-line summary with the logins."""
    person = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).first()
    if person is None:
        person = Person(
            personnummer=PERSONNUMMER,
            name="Alva Lindqvist",
            phone_e164="+46701234567",
            timezone="Europe/Stockholm",
            created_at=now,
        )
        session.add(person)
        session.flush()
    for unit in (PSYKIATRI, VARDCENTRAL, BOENDESTOD, OMBUD):
        provider = get_or_add_provider(session, unit.name, unit.kind)
        provider.phone, provider.address = unit.phone, unit.address
        provider.contact_name = unit.contact or None
    psykiatri = session.scalars(select(Provider).where(Provider.name == PSYKIATRI.name)).one()
    for username, (password, role, display) in LOGINS.items():
        if session.scalars(select(User.id).where(User.username == username)).first():
            continue
        user = add_user(
            session,
            username=username,
            display_name=display,
            password=password,
            role=role,
            person_id=person.id if role == Role.PERSON else None,
            provider_id=psykiatri.id if role == Role.CAREGIVER else None,
        )
        if role == Role.HELPER:
            session.add(
                HelperGrant(
                    person_id=person.id,
                    helper_user_id=user.id,
                    view_level=ViewLevel.TIME_PLACE,
                    basis=HelperBasis.RELATIVE,
                    granted_utc=now,
                )
            )
    session.commit()
    today = now.astimezone(ZONE).date()
    monday = today - timedelta(days=today.weekday())
    changed = 0
    for unit, data in demo_files(monday).items():
        summary = import_ics_file(
            session,
            person_id=person.id,
            provider_name=unit.name,
            provider_kind=unit.kind,
            source_name="demo",
            data=data,
            now=now,
            max_bytes=len(data) + 1,
        )
        changed += summary.added + summary.updated + summary.cancelled
    _practitioner_photo(session, person.id, now)
    logins = ", ".join(f"{u}/{p}" for u, (p, _r, _d) in LOGINS.items())
    return f"demo ready ({changed} bookings added or changed); logins: {logins}"


DEMO_FEED_BY = "demo (command line)"


def demo_feed(session: Session, *, now: datetime) -> str:
    """A new full feed for the demo person, its token returned to be shown once; the feed
    an earlier demo run made stops."""
    person = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).one()
    for old in session.scalars(
        select(Feed).where(
            Feed.person_id == person.id,
            Feed.created_by == DEMO_FEED_BY,
            Feed.revoked_utc.is_(None),
        )
    ):
        old.revoked_utc = now
    session.commit()
    actor = Actor(user_id=None, role=None, label=DEMO_FEED_BY)
    made = create_feed(session, actor, person.id, level="full", alarms=True, now=now)
    return made.token


def _practitioner_photo(session: Session, person_id: int, now: datetime) -> None:
    """A drawn portrait for the nurse of this week's visit, stored as a provider's photo
    would be, so that the demo shows a practitioner's face (no real person's picture)."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    from calendar_app.domain.photos import reencode
    from calendar_app.models import Booking
    from calendar_app.services.locking import calendar_changed
    from calendar_app.services.photos import store

    picture = Image.new("RGB", (240, 300), "#dbe7f3")
    draw = ImageDraw.Draw(picture)
    draw.ellipse((70, 50, 170, 160), fill="#c98f6b")  # face
    draw.pieslice((60, 30, 180, 150), 180, 360, fill="#5b3a29")  # hair
    draw.rounded_rectangle((40, 170, 200, 300), radius=40, fill="#1f5fa8")  # uniform
    out = BytesIO()
    picture.save(out, "PNG")
    photo = reencode(out.getvalue())
    store(session, [photo], now)
    for booking in session.scalars(
        select(Booking).where(Booking.person_id == person_id, Booking.uid.startswith("psyk-1"))
    ):
        if booking.practitioner_photo != photo.digest:
            booking.practitioner_photo = photo.digest
            calendar_changed(session, person_id)
    session.commit()
