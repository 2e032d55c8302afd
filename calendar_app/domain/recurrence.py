"""Expansion of recurring series (RRULE/RDATE/EXDATE, RECURRENCE-ID overrides).

The expansion itself is done by ``recurring-ical-events``; this module keeps the parsed
components cached, translates the results into plain tuples, and keeps every expansion
within a budget. Before the library is asked for a window, the series is measured by
walking its rules lazily with dateutil (the library's own rule engine), counting what the
library would walk through, and stopping as soon as the budget is exceeded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr

OccurrenceTimes = tuple[str, date | datetime, date | datetime]

# --- The budget ------------------------------------------------------------------------
# Care calendars need few occurrences: a daily visit for 400 days is 400, home care with
# six visits a day for a year about 2,200. A rule with more than this in one year is not a
# care schedule but a mistake or an attack: FREQ=DAILY with 24 BYHOUR and 60 BYMINUTE
# values is 525,600 occurrences a year, written in 300 bytes.
MAX_PER_YEAR = 5_000
# To find the occurrences in a window the library walks a rule from its DTSTART, day by day
# and occurrence by occurrence, however long ago that was. A step (a day or an occurrence
# walked) costs about a microsecond; 100,000 steps are a daily visit for 137 years.
MAX_STEPS_PER_SERIES = 100_000
# One view, or one file's import, shares a budget among all its series: a year of a
# calendar with 100 weekly series that started six years ago takes about 300,000 steps.
# These keep the expansion in one request to about a second, in one import to about two.
MAX_STEPS_PER_VIEW = 1_000_000
MAX_STEPS_PER_IMPORT = 2_000_000
# dateutil stops walking a rule only when it finds an occurrence past the end asked for,
# or at the year 9999. A rule whose parts never match (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30)
# would walk three million empty days, seconds of CPU, on every expansion. So a rule is
# measured with its dates moved forward by whole 400-year Gregorian cycles (weekdays and
# leap days fall exactly as in the real years) to near that end, where an empty walk is
# short; a rule that then matches nothing for LONGEST_GAP_YEARS (longer than any real
# rule's pause: 29 February on a given weekday, across 2100, recurs within 40 years) is
# taken to match nothing ever again.
LONGEST_GAP_YEARS = 50
_CYCLE_YEARS = 400
_LONGEST_WALK_DAYS = MAX_STEPS_PER_SERIES
TOO_MANY = "event.too_many_occurrences"


class OverBudget(Exception):
    """Expanding the series would cost more than its budget; ``code`` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Budget:
    """Steps of expansion left for one view or one import, shared by all its series."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int) -> bool:
        """Take ``steps`` if that many are left; if not, take nothing and say False."""
        if steps > self.left:
            return False
        self.left -= steps
        return True


def recurrence_key(value: date | datetime) -> str:
    """The stable text form of a RECURRENCE-ID: UTC date-time, or a plain date."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


_KEY = re.compile(r"[0-9]{8}(T[0-9]{6}Z)?")


def is_recurrence_key(key: str) -> bool:
    """Whether ``key`` is a recurrence key as :func:`recurrence_key` writes them, of a real
    date (and time) in the years 1900-2200, where the events this service reads lie."""
    if not _KEY.fullmatch(key):
        return False
    try:
        day = date(int(key[0:4]), int(key[4:6]), int(key[6:8]))
        if "T" in key:
            time(int(key[9:11]), int(key[11:13]), int(key[13:15]))
    except ValueError:
        return False
    return 1900 <= day.year <= 2200


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


def _calendar(components: Iterable[icalendar.Event]) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    for component in components:
        calendar.add_component(component)
    return calendar


@lru_cache(maxsize=1024)
def _query(texts: tuple[str, ...]) -> recurring_ical_events.CalendarQuery:
    # Building the query reads every rule again; a series' texts change only when the
    # series does, so the query is kept for the next window asked.
    return recurring_ical_events.of(_calendar(_parsed(text) for text in texts))


def _times(component: Any) -> OccurrenceTimes:
    start: Any = component["DTSTART"].dt
    end: Any = component["DTEND"].dt if "DTEND" in component else start
    rid = component.get("RECURRENCE-ID")
    return (recurrence_key(rid.dt) if rid is not None else "", start, end)


# --- Measuring a series ----------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Wall-clock bounds of a measure: occurrences in [start, end) are counted; the walk
    stops at ``stop`` (None: at the rule's own end), or after ``most`` occurrences once
    past ``end``."""

    start: datetime
    end: datetime
    stop: datetime | None
    most: int | None = None


@dataclass(frozen=True)
class _Measure:
    steps: int
    in_window: int
    last: datetime | None  # None: the walk stopped before the series' end


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _wall_clock(value: date | datetime) -> datetime:
    """A DTSTART-like value as the naive wall-clock time dateutil computes rules in."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, time())


def _until(rule: Any, dtstart: date | datetime) -> datetime | None:
    """The rule's UNTIL as wall-clock time in DTSTART's zone, a day late to be generous."""
    values = rule.get("UNTIL")
    if not values:
        return None
    until = values[0]
    if not isinstance(until, datetime):
        return datetime.combine(until, time.max) + timedelta(days=1)
    if until.tzinfo is not None and isinstance(dtstart, datetime) and dtstart.tzinfo:
        until = until.astimezone(dtstart.tzinfo)
    return until.replace(tzinfo=None) + timedelta(days=1)


def _count(rule: Any) -> int | None:
    values = rule.get("COUNT")
    if not values or int(values[0]) < 0:
        return None  # recurring-ical-events ignores a negative COUNT, and so do we
    return int(values[0])


def _moved(value: datetime, years: int) -> datetime:
    # Whole 400-year cycles: 29 February exists in the year moved to exactly when it did.
    return value.replace(year=value.year + years)


def _rule_instants(rule: Any, dtstart: datetime, shift: int) -> Iterator[datetime]:
    """The rule's occurrences without COUNT and UNTIL, lazily, in the real years; ends
    only where the rule matches nothing more before the year 9999 (moved)."""
    endless = icalendar.vRecur({k: v for k, v in rule.items() if k not in ("COUNT", "UNTIL")})
    engine = rrulestr(endless.to_ical().decode(), dtstart=_moved(dtstart, shift))
    for instant in engine:
        yield _moved(instant, -shift)


def _measure_rule(
    rule: Any, start: date | datetime, window: _Window, limit: int, shift: int
) -> _Measure:
    dtstart = _wall_clock(start)
    count, until = _count(rule), _until(rule, start)
    in_window = 0
    last = None
    for walked, instant in enumerate(_rule_instants(rule, dtstart, shift)):
        steps = walked + (instant - dtstart).days
        ended = (count is not None and walked >= count) or (until is not None and instant > until)
        if ended or (window.stop is not None and instant >= window.stop):
            # The library's walk stops here as well, having looked at this one.
            return _Measure(steps, in_window, last if ended else None)
        if window.most is not None and walked >= window.most and instant >= window.end:
            return _Measure(steps, in_window, None)
        last = instant
        if window.start <= instant < window.end:
            in_window += 1
            if in_window > MAX_PER_YEAR:
                raise OverBudget(
                    TOO_MANY, f"the repeat rule gives more than {MAX_PER_YEAR} visits in a year"
                )
        if steps + 1 > limit:
            raise OverBudget(TOO_MANY, "the repeat rule is too costly to expand")
    raise OverBudget(
        "event.rrule_invalid", f"the repeat rule matches no date for {LONGEST_GAP_YEARS} years"
    )


def _rdates(component: Any) -> list[datetime]:
    result = []
    for prop in _as_list(component.get("RDATE")):
        for item in prop.dts:
            value = item.dt[0] if isinstance(item.dt, tuple) else item.dt
            result.append(_wall_clock(value))
    return result


def _measure(masters: Iterable[Any], window: _Window, limit: int) -> _Measure:
    """What the library walks through to expand the series up to ``window.stop``; raise
    :class:`OverBudget` as soon as that is more than ``limit`` steps."""
    steps = in_window = 0
    lasts: list[datetime | None] = []
    for master in masters:
        start: Any = master["DTSTART"].dt
        dtstart = _wall_clock(start)
        rdates = _rdates(master)
        steps += len(rdates)
        in_window += sum(1 for day in rdates if window.start <= day < window.end)
        if rdates:
            lasts.append(max(rdates))
        if window.stop is not None and (window.stop - dtstart).days > limit - steps:
            raise OverBudget(TOO_MANY, "the repeat rule is too costly to expand")
        horizon = window.stop or dtstart + timedelta(days=_LONGEST_WALK_DAYS)
        cycles = (MAXYEAR - LONGEST_GAP_YEARS - horizon.year) // _CYCLE_YEARS
        shift = _CYCLE_YEARS * max(0, cycles)
        for rule in _as_list(master.get("RRULE")):
            measured = _measure_rule(rule, start, window, limit - steps, shift)
            steps += measured.steps
            in_window += measured.in_window
            lasts.append(measured.last)
    if in_window > MAX_PER_YEAR:
        raise OverBudget(TOO_MANY, f"the series gives more than {MAX_PER_YEAR} visits in a year")
    if steps > limit:
        raise OverBudget(TOO_MANY, "the repeat rule is too costly to expand")
    ends = [last for last in lasts if last is not None]
    ended = window.stop is None and len(ends) == len(lasts)
    return _Measure(steps, in_window, max(ends, default=None) if ended else None)


# --- Expanding for a view --------------------------------------------------------------


@dataclass(frozen=True)
class _Year:
    times: tuple[OccurrenceTimes, ...]
    steps: int
    over: bool = False


@lru_cache(maxsize=4096)
def _year(texts: tuple[str, ...], year: int) -> _Year:
    # A series' occurrences in one calendar year (UTC) depend only on its texts, which
    # change only when the series does: worth keeping, since a person's weeks and months
    # are asked for again and again. A year over budget is kept too, found out once.
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    # Wall-clock bounds a day wider on each side: every zone's offset is within that.
    wall_end = _wall_clock(end) + timedelta(days=1)
    window = _Window(_wall_clock(start) - timedelta(days=1), wall_end, wall_end)
    masters = [c for c in map(_parsed, texts) if "RECURRENCE-ID" not in c]
    try:
        measured = _measure(masters, window, MAX_STEPS_PER_SERIES)
    except Exception:  # OverBudget, or a rule dateutil cannot read (nor could the library)
        # Finding that out may have cost the series' whole budget: the view pays for it.
        return _Year((), MAX_STEPS_PER_SERIES, over=True)
    return _Year(tuple(_times(c) for c in _query(texts).between(start, end)), measured.steps)


def expand(
    texts: Sequence[str],
    window_start: datetime,
    window_end: datetime,
    budget: Budget | None = None,
) -> list[OccurrenceTimes]:
    """Occurrences of one series (master and overrides) that overlap the window.

    Expanded a calendar year at a time; the caller filters to the exact window. An
    occurrence that spans a new year is returned once. A year that would cost more than
    the series' own budget, or than is left of ``budget`` (one per view, shared by its
    series), gives no occurrences.
    """
    budget = budget if budget is not None else Budget(MAX_STEPS_PER_VIEW)
    key = tuple(texts)
    seen: set[tuple[str, date | datetime]] = set()
    result: list[OccurrenceTimes] = []
    # The first and last years have no room for the day's margin measuring needs.
    first = max(window_start.astimezone(UTC).year, MINYEAR + 1)
    last = min(window_end.astimezone(UTC).year, MAXYEAR - 1)
    for year in range(first, last + 1):
        if budget.left <= 0:
            break
        expansion = _year(key, year)
        if not budget.spend(expansion.steps) or expansion.over:
            continue
        for times in expansion.times:
            if (times[0], times[1]) not in seen:
                seen.add((times[0], times[1]))
                result.append(times)
    return result


# --- Measuring on import ---------------------------------------------------------------


@dataclass(frozen=True)
class Extent:
    """A series' occurrences from its start: all of them, or (``open_ended``: it has no
    end, or more occurrences than the scan limit) the first few."""

    occurrences: tuple[OccurrenceTimes, ...]
    open_ended: bool


def series_extent(text: str, *, budget: Budget, scan_limit: int) -> Extent:
    """Where a series' master begins and ends, if it keeps within the budget.

    Raise :class:`OverBudget` for a rule too dense (more than MAX_PER_YEAR occurrences in
    its first year), too costly to expand or matching nothing, or when ``budget`` (one
    per import) is spent. Nothing is cached: an import of thousands of series must not
    push the calendar queries' entries out of the caches.
    """
    master: Any = icalendar.Event.from_ical(text)
    dtstart = _wall_clock(master["DTSTART"].dt)
    rules = _as_list(master.get("RRULE"))
    bounded = all("COUNT" in rule or "UNTIL" in rule for rule in rules)
    first_year = dtstart + timedelta(days=366)
    window = _Window(dtstart, first_year, None if bounded else first_year, most=scan_limit)
    limit = min(MAX_STEPS_PER_SERIES, budget.left)
    try:
        measured = _measure([master], window, limit)
    except OverBudget as exc:
        if exc.code == TOO_MANY and limit < MAX_STEPS_PER_SERIES:
            raise OverBudget(TOO_MANY, "the file's repeat rules together are too costly") from None
        raise
    budget.spend(measured.steps)
    query = recurring_ical_events.of(_calendar([master]))
    earliest = min([dtstart, *_rdates(master)])
    if measured.last is None:
        # Open-ended (or more than the scan limit): where it begins is all that is wanted.
        for days in (32, 368):
            found = _between(query, earliest, earliest + timedelta(days=days))
            if found:
                break
        return Extent(found, open_ended=True)
    found = _between(query, earliest, measured.last)
    return Extent(found, open_ended=len(found) > scan_limit)


def _between(
    query: recurring_ical_events.CalendarQuery, first: datetime, last: datetime
) -> tuple[OccurrenceTimes, ...]:
    # Wall-clock times taken as UTC, with two days' margin for any zone's offset.
    found = query.between(
        first.replace(tzinfo=UTC) - timedelta(days=2), last.replace(tzinfo=UTC) + timedelta(days=2)
    )
    return tuple(_times(c) for c in found)
