"""A county's people, units and visits as rows to insert: deterministic (fixed seed), and
shaped like Kronoberg's region and municipalities, not like any real person's data."""

from __future__ import annotations

import dataclasses
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from calendar_app.domain.bookings import IncomingBooking
from calendar_app.models import BookingOrigin, ProviderKind
from calendar_app.providers import ics
from calendar_app.services.directory import BUILTIN_SOURCE, PUSH_SOURCE

# The stored columns of a booking as received: the one place this mapping lives is the
# import itself, so that seeded rows are exactly what an import or a push would store.
from calendar_app.services.imports import _values as booking_columns

ZONE_NAME = "Europe/Stockholm"
ZONE = ZoneInfo(ZONE_NAME)
CANCELLED_SHARE = 0.05
NATIVE_SHARE = 0.1  # of visits at units without their own system: booked here by caregivers
FIRST_NAMES = ("Alva", "Elias", "Maja", "Noah", "Saga", "Hugo", "Ebba", "Liam", "Stina", "Nils")
LAST_NAMES = ("Lindqvist", "Johansson", "Nilsson", "Berg", "Karlsson", "Svensson", "Holm")


@dataclass(frozen=True)
class Unit:
    """A care unit as the county has them, and how its visits come and look."""

    name: str
    kind: ProviderKind
    share: float  # of people in its care (primary care: the choice among the three)
    visits: tuple[int, int]  # single visits a person has there in the 18 months seeded
    minutes: tuple[int, ...]
    title: str
    location: str
    # "push": its own booking system pushes (PUT /api/v1/push/bookings); "weekly": a
    # weekly home-support series besides the single visits; "primary": primary care,
    # everyone has exactly one.
    flags: str = ""

    @property
    def pushes(self) -> bool:
        return "push" in self.flags


REGION, MUNICIPALITY = ProviderKind.REGION, ProviderKind.MUNICIPALITY
# fmt: off
UNITS: tuple[Unit, ...] = (
    Unit("Vuxenpsykiatrin Växjö", REGION, 0.45, (10, 30), (45, 60), "Samtal",
         "Sigfridsvägen 9, Växjö", "push"),
    Unit("Vuxenpsykiatrin Ljungby", REGION, 0.2, (8, 20), (45, 60), "Samtal", "Ljungby lasarett"),
    Unit("Vårdcentralen Teleborg", REGION, 0.4, (3, 10), (20, 30), "Läkarbesök",
         "Teleborg centrum, Växjö", "push primary"),
    Unit("Vårdcentralen Ljungby", REGION, 0.35, (3, 10), (20, 30), "Läkarbesök", "Ljungby",
         "primary"),
    Unit("Vårdcentralen Alvesta", REGION, 0.25, (3, 10), (20, 30), "Sjuksköterskebesök",
         "Alvesta", "primary"),
    Unit("Folktandvården Centrum Växjö", REGION, 0.4, (1, 3), (45, 60), "Tandvård",
         "Storgatan 22, Växjö", "push"),
    Unit("Habiliteringen Kronoberg", REGION, 0.1, (4, 10), (60, 90), "Habilitering", "Växjö"),
    Unit("Växjö kommun, boendestöd", MUNICIPALITY, 0.35, (4, 10), (60,), "Boendestöd", "Hemma",
         "weekly"),
    Unit("Ljungby kommun, boendestöd", MUNICIPALITY, 0.15, (4, 10), (60,), "Boendestöd",
         "Hemma", "weekly"),
    Unit("Alvesta kommun, socialpsykiatri", MUNICIPALITY, 0.1, (6, 12), (60,), "Träffpunkt",
         "Alvesta"),
    Unit("Personligt ombud Kronoberg", MUNICIPALITY, 0.1, (4, 8), (60,),
         "Möte med personligt ombud", "Växjö"),
    Unit("Växjö kommun, biståndshandläggare", MUNICIPALITY, 0.2, (1, 3), (60,), "Uppföljning",
         "Västra Esplanaden 18, Växjö"),
)
# fmt: on


def a_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def personnummer_series(count: int, rng: random.Random) -> Iterator[str]:
    """``count`` distinct valid 12-digit personnummer of adults (born 1940-2004)."""
    seen: set[str] = set()
    while len(seen) < count:
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 64))
        serial = f"{rng.randrange(1000):03d}"
        body = born.strftime("%y%m%d") + serial
        total = 0
        for index, digit in enumerate(body):
            n = int(digit) * (2 if index % 2 == 0 else 1)
            total += n - 9 if n > 9 else n
        full = born.strftime("%Y%m%d") + serial + str((10 - total % 10) % 10)
        if full not in seen:
            seen.add(full)
            yield full


@dataclass
class People:
    """The people to insert, and for each the units (indexes into UNITS) caring for them."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    units_of: list[list[int]] = field(default_factory=list)


def people(count: int, rng: random.Random, now: datetime) -> People:
    """People and the units that care for each of them."""
    result = People()
    primaries = [i for i, u in enumerate(UNITS) if "primary" in u.flags]
    weights = [UNITS[i].share for i in primaries]
    for index, pnr in enumerate(personnummer_series(count, rng)):
        result.rows.append(
            {
                "personnummer": pnr,
                "name": f"{a_name(rng)} {index:05d}",
                "phone_e164": f"+4670{rng.randrange(10**7):07d}",
                "timezone": ZONE_NAME,
                "protected_identity": rng.random() < 0.01,
                "created_at": now - timedelta(days=400),
                "calendar_version": 1,
            }
        )
        units = [rng.choices(primaries, weights)[0]]
        units += [i for i, u in enumerate(UNITS) if i not in primaries and rng.random() < u.share]
        result.units_of.append(sorted(units))
    return result


def _weekday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


def _visit_time(day: date, rng: random.Random, minutes: int) -> tuple[datetime, datetime]:
    slot = rng.randrange(8 * 4, 16 * 4)  # quarter hours from 08:00 to 15:45
    start = datetime.combine(day, clock(slot // 4, (slot % 4) * 15), tzinfo=ZONE).astimezone(UTC)
    return start, start + timedelta(minutes=minutes)


_SERIES: dict[tuple[date, int], IncomingBooking] = {}


def weekly_series(uid: str, first_day: date, hour: int) -> IncomingBooking:
    """A weekly home-support visit, 26 times from ``first_day``, read by the real ICS
    adapter (so its stored series is exactly what an import makes); parsed once a pattern."""
    template = _SERIES.get((first_day, hour))
    if template is None:
        stamp = first_day.strftime("%Y%m%d")
        lines = (
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Personkalendern//loadtest//SV",
            "BEGIN:VEVENT",
            "UID:series-template",
            "DTSTAMP:20260101T080000Z",
            f"DTSTART;TZID={ZONE_NAME}:{stamp}T{hour:02d}0000",
            f"DTEND;TZID={ZONE_NAME}:{stamp}T{hour + 1:02d}0000",
            "RRULE:FREQ=WEEKLY;COUNT=26",
            "SUMMARY:Boendestöd",
            "LOCATION:Hemma",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        )
        template = ics.parse("\r\n".join(lines).encode(), default_zone=ZONE_NAME).bookings[0]
        _SERIES[(first_day, hour)] = template
    assert template.recurrence_ics is not None
    return dataclasses.replace(
        template, uid=uid, recurrence_ics=template.recurrence_ics.replace("series-template", uid)
    )


@dataclass(frozen=True)
class Ids:
    """The ids the inserts gave: units, their sources by (unit, name), their caregivers."""

    providers: list[int]
    sources: dict[tuple[int, str], int]
    caregivers: dict[int, list[int]]


def bookings(
    rng: random.Random,
    now: datetime,
    person_id: int,
    pnr: str,
    units: Sequence[int],
    ids: Ids,
    pushed: dict[int, list[dict[str, str]]],
) -> list[dict[str, Any]]:
    """The person's bookings, a year back and six months ahead, at each of their units.

    A pushing unit's future visits are added to ``pushed`` as its system sent them, so that
    the provider's virtual users can move them or send them again unchanged.
    """
    today = now.astimezone(ZONE).date()
    first, last = today - timedelta(days=365), today + timedelta(days=182)
    rows = []
    for index in units:
        unit = UNITS[index]
        for number in range(rng.randint(*unit.visits)):
            day = _weekday_on_or_after(first + timedelta(days=rng.randrange((last - first).days)))
            start, end = _visit_time(day, rng, rng.choice(unit.minutes))
            native = not unit.pushes and rng.random() < NATIVE_SHARE
            status = "cancelled" if rng.random() < CANCELLED_SHARE else "confirmed"
            practitioner, mode = a_name(rng), "phone" if rng.random() < 0.1 else "in_person"
            if unit.pushes:
                uid, source = f"u{index}-p{person_id}-{number}", PUSH_SOURCE
                if start > now + timedelta(days=1) and status == "confirmed":
                    pushed[index].append(
                        {
                            "id": uid,
                            "personnummer": pnr,
                            "start": start.isoformat(),
                            "end": end.isoformat(),
                            "title": unit.title,
                            "location": unit.location,
                            "practitioner_name": practitioner,
                            "mode": mode,
                        }
                    )
            elif native:
                uid, source = f"{secrets.token_hex(16)}@personkalendern", BUILTIN_SOURCE
            else:
                uid, source = f"{index}-{person_id}-{number}@unit.example.se", "file"
            incoming = IncomingBooking.single(
                uid,
                start,
                end,
                status=status,
                tzid=None if unit.pushes else ZONE_NAME,  # the push API takes instants
                title=unit.title,
                location=unit.location,
                practitioner_name=practitioner,
                mode=mode,
            )
            rows.append(
                {
                    **booking_columns(incoming, now),
                    "person_id": person_id,
                    "source_id": ids.sources[(index, source)],
                    "provider_id": ids.providers[index],
                    "origin": BookingOrigin.NATIVE if native else BookingOrigin.SYNCED,
                    "booked_by_user_id": rng.choice(ids.caregivers[index]) if native else None,
                    "first_seen_utc": now - timedelta(days=rng.randrange(1, 300)),
                }
            )
        if "weekly" in unit.flags:
            series_start = _weekday_on_or_after(today - timedelta(days=rng.randrange(7, 90)))
            incoming = weekly_series(
                f"bs-{index}-{person_id}@kommun.example.se", series_start, rng.randrange(9, 15)
            )
            rows.append(
                {
                    **booking_columns(incoming, now),
                    "person_id": person_id,
                    "source_id": ids.sources[(index, "file")],
                    "provider_id": ids.providers[index],
                    "origin": BookingOrigin.SYNCED,
                    "booked_by_user_id": None,
                    "first_seen_utc": now - timedelta(days=30),
                }
            )
    return rows
