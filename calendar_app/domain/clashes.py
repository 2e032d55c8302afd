"""Clash rules for a proposed visit (DESIGN §4 "Clashes").

Visits are half-open intervals [start, end): back-to-back is no clash. A hard clash is an
overlap with another non-cancelled booking or with a busy period the person marked. Soft
warnings: too little travel time between different places, more visits in a day than the
person manages, outside the times that suit the person, a Swedish public holiday. Every
warning names what it clashes with, at the detail the viewer may see (the caller passes
labels already redacted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from calendar_app.domain.errors import DomainError
from calendar_app.domain.intervals import overlaps

# Days off in practice that the law does not list; DESIGN §4 counts them.
DE_FACTO_DAYS_OFF = {"Midsommarafton", "Julafton", "Nyårsafton"}


@lru_cache(maxsize=64)
def swedish_holidays(year: int) -> Mapping[date, str]:
    """Public holidays (Sundays not counted) plus Midsommarafton, Julafton, Nyårsafton."""
    public = holidays.Sweden(years=year, include_sundays=False, language="sv")
    every = holidays.Sweden(
        years=year,
        include_sundays=False,
        language="sv",
        categories=holidays.Sweden.supported_categories,
    )
    days = dict(public.items())
    days.update({day: name for day, name in every.items() if name in DE_FACTO_DAYS_OFF})
    return days


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The instant of a wall-clock time; a time that does not exist or exists twice is
    refused with a question, never guessed."""
    first = datetime.combine(day, clock, tzinfo=zone)
    back = first.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if back.replace(tzinfo=None) != first.replace(tzinfo=None):
        raise DomainError(
            "time.nonexistent",
            f"{clock:%H:%M} does not exist on {day.isoformat()} (the clocks go forward): "
            "did you mean an hour later?",
        )
    if first.utcoffset() != first.replace(fold=1).utcoffset():
        raise DomainError(
            "time.ambiguous",
            f"{clock:%H:%M} happens twice on {day.isoformat()} (the clocks go back): "
            "summer time or winter time?",
        )
    return first


_POSTCODE_TOWN = re.compile(r"\b\d{3}\s?\d{2}\s+(.+)$")


def normalise_address(text: str) -> str:
    """Compare addresses without case, punctuation or repeated spaces."""
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def postal_town(text: str) -> str:
    """The postal town of a Swedish address ("…, 352 46 Växjö" -> "växjö"), or ''."""
    last = text.split(",")[-1].strip()
    match = _POSTCODE_TOWN.search(last)
    town = match.group(1) if match else (last if "," in text else "")
    return normalise_address(town)


@dataclass(frozen=True)
class WeeklyWindow:
    """Some weekdays (0 = Monday) from one local time to another, e.g. weekdays 18-21."""

    weekdays: frozenset[int]
    start: time
    end: time

    def covers(self, start: datetime, end: datetime, zone: ZoneInfo) -> bool:
        """Whether [start, end) lies inside this window on the visit's own day."""
        day = start.astimezone(zone).date()
        return any(ws <= start and end <= we for ws, we in self.instances(day, day, zone))

    def instances(self, first: date, last: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """This window's intervals on the days first..last (inclusive)."""
        result = []
        day = first
        while day <= last:
            if day.weekday() in self.weekdays:
                start = datetime.combine(day, self.start, tzinfo=zone)
                end = datetime.combine(day, self.end, tzinfo=zone)
                result.append((start, end))
            day += timedelta(days=1)
        return result


@dataclass(frozen=True)
class Preferences:
    """What the person has said suits them."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Stockholm"))
    suitable: tuple[WeeklyWindow, ...] = ()  # empty: any time suits
    busy: tuple[tuple[str, WeeklyWindow], ...] = ()  # (label, e.g. "Arbete")
    max_visits_per_day: int | None = None
    travel_buffer: timedelta = timedelta(minutes=60)  # between towns
    same_town_buffer: timedelta = timedelta(minutes=20)


@dataclass(frozen=True)
class Visit:
    """An existing booking as the checker sees it (``label`` already at the viewer's level)."""

    key: str
    start: datetime
    end: datetime
    label: str
    location: str = ""
    cancelled: bool = False
    travels: bool = True  # False for a phone or video visit: no journey to or from it


@dataclass(frozen=True)
class ClashWarning:
    kind: str  # overlap, busy_period, travel, max_per_day, outside_suitable, holiday
    hard: bool
    other: str  # what it clashes with
    other_key: str | None = None


def check(
    start: datetime,
    end: datetime,
    location: str,
    existing: Sequence[Visit],
    prefs: Preferences,
) -> list[ClashWarning]:
    """Every hard clash and soft warning for a visit at [start, end) at ``location``."""
    if end <= start:
        raise DomainError("visit.end_before_start", "the visit must end after it starts")
    zone = prefs.zone
    warnings: list[ClashWarning] = []
    live = [v for v in existing if not v.cancelled]
    for visit in live:
        if overlaps(start, end, visit.start, visit.end):
            warnings.append(ClashWarning("overlap", True, visit.label, visit.key))
    local_day = start.astimezone(zone).date()
    for label, window in prefs.busy:
        for busy_start, busy_end in window.instances(
            local_day - timedelta(days=1), end.astimezone(zone).date(), zone
        ):
            if overlaps(start, end, busy_start, busy_end):
                warnings.append(ClashWarning("busy_period", True, label))
                break
    for visit in live:
        if not visit.travels:
            continue
        needed = _travel_time(location, visit.location, prefs)
        if not needed or overlaps(start, end, visit.start, visit.end):
            continue
        gap = start - visit.end if visit.end <= start else visit.start - end
        if gap < needed:
            warnings.append(ClashWarning("travel", False, visit.label, visit.key))
    same_day = [v for v in live if v.start.astimezone(zone).date() == local_day]
    if prefs.max_visits_per_day is not None and len(same_day) + 1 > prefs.max_visits_per_day:
        warnings.append(ClashWarning("max_per_day", False, f"{len(same_day) + 1}"))
    if prefs.suitable and not any(w.covers(start, end, zone) for w in prefs.suitable):
        warnings.append(ClashWarning("outside_suitable", False, ""))
    holiday = swedish_holidays(local_day.year).get(local_day)
    if holiday:
        warnings.append(ClashWarning("holiday", False, holiday))
    return warnings


def _travel_time(here: str, there: str, prefs: Preferences) -> timedelta:
    """No buffer for the same address, a short one within a town, the full one otherwise.

    With no geocoder offline, places are compared by normalised address, then postal town.
    An unknown place (empty, or a phone/video visit) needs no travel.
    """
    if not here.strip() or not there.strip():
        return timedelta(0)
    if normalise_address(here) == normalise_address(there):
        return timedelta(0)
    town_here, town_there = postal_town(here), postal_town(there)
    if town_here and town_here == town_there:
        return prefs.same_town_buffer
    return prefs.travel_buffer
