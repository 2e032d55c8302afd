"""Expansion of recurring series (RRULE/RDATE/EXDATE, RECURRENCE-ID overrides).

The expansion itself is done by ``recurring-ical-events``; this module only keeps the
parsed components cached and translates the results into plain tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import icalendar
import recurring_ical_events

OccurrenceTimes = tuple[str, date | datetime, date | datetime]


def recurrence_key(value: date | datetime) -> str:
    """The stable text form of a RECURRENCE-ID: UTC date-time, or a plain date."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def key_to_iso(key: str) -> str | None:
    """Turn a recurrence key into ISO 8601 (UTC with Z, or a date); '' gives None."""
    if not key:
        return None
    if "T" in key:
        return f"{key[0:4]}-{key[4:6]}-{key[6:8]}T{key[9:11]}:{key[11:13]}:{key[13:15]}Z"
    return f"{key[0:4]}-{key[4:6]}-{key[6:8]}"


@lru_cache(maxsize=2048)
def _parsed(ics_text: str) -> icalendar.Event:
    component = icalendar.Event.from_ical(ics_text)
    assert isinstance(component, icalendar.Event)
    return component


def _calendar(texts: Iterable[str]) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    for text in texts:
        calendar.add_component(_parsed(text))
    return calendar


@lru_cache(maxsize=1024)
def _query(texts: tuple[str, ...]) -> recurring_ical_events.CalendarQuery:
    # Building the query reads every rule again; a series' texts change only when the
    # series does, so the query is kept for the next window asked.
    return recurring_ical_events.of(_calendar(texts))


def _times(component: Any) -> OccurrenceTimes:
    start: Any = component["DTSTART"].dt
    end: Any = component["DTEND"].dt if "DTEND" in component else start
    rid = component.get("RECURRENCE-ID")
    return (recurrence_key(rid.dt) if rid is not None else "", start, end)


@lru_cache(maxsize=4096)
def _year(texts: tuple[str, ...], year: int) -> tuple[OccurrenceTimes, ...]:
    # A series' occurrences in one calendar year (UTC) depend only on its texts, which
    # change only when the series does: worth keeping, since a person's weeks and months
    # are asked for again and again.
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    return tuple(_times(c) for c in _query(texts).between(start, end))


def expand(
    texts: Sequence[str], window_start: datetime, window_end: datetime
) -> list[OccurrenceTimes]:
    """Occurrences of one series (master and overrides) that overlap the window.

    Expanded a calendar year at a time; the caller filters to the exact window. An
    occurrence that spans a new year is returned once.
    """
    key = tuple(texts)
    seen: set[tuple[str, date | datetime]] = set()
    result: list[OccurrenceTimes] = []
    for year in range(window_start.astimezone(UTC).year, window_end.astimezone(UTC).year + 1):
        for times in _year(key, year):
            if (times[0], times[1]) not in seen:
                seen.add((times[0], times[1]))
                result.append(times)
    return result


def first_occurrences(texts: Sequence[str], limit: int) -> list[OccurrenceTimes]:
    """Up to ``limit`` occurrences from the start of the series, in order.

    Used once per series on import, so nothing is cached: an import of thousands of
    series must not push the calendar queries' entries out of the caches.
    """
    calendar = icalendar.Calendar()
    for text in texts:
        calendar.add_component(icalendar.Event.from_ical(text))
    query = recurring_ical_events.of(calendar)
    result: list[OccurrenceTimes] = []
    for component in query.all():
        result.append(_times(component))
        if len(result) >= limit:
            break
    return result
