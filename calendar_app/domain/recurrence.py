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


@lru_cache(maxsize=8192)
def _parsed(ics_text: str) -> icalendar.Event:
    component = icalendar.Event.from_ical(ics_text)
    assert isinstance(component, icalendar.Event)
    return component


def _calendar(texts: Iterable[str]) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    for text in texts:
        calendar.add_component(_parsed(text))
    return calendar


def _times(component: Any) -> OccurrenceTimes:
    start: Any = component["DTSTART"].dt
    end: Any = component["DTEND"].dt if "DTEND" in component else start
    rid = component.get("RECURRENCE-ID")
    return (recurrence_key(rid.dt) if rid is not None else "", start, end)


def expand(
    texts: Sequence[str], window_start: datetime, window_end: datetime
) -> list[OccurrenceTimes]:
    """Occurrences of one series (master and overrides) that overlap the window."""
    query = recurring_ical_events.of(_calendar(texts))
    return [_times(c) for c in query.between(window_start, window_end)]


def first_occurrences(texts: Sequence[str], limit: int) -> list[OccurrenceTimes]:
    """Up to ``limit`` occurrences from the start of the series, in order."""
    query = recurring_ical_events.of(_calendar(texts))
    result: list[OccurrenceTimes] = []
    for component in query.all():
        result.append(_times(component))
        if len(result) >= limit:
            break
    return result
