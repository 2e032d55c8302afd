"""Consolidation review: which days in the coming weeks could be merged, and how.

"4 besök på 4 olika dagar vecka 12 – 2 kan läggas samma dag": for each week, the visits
that need travel are grouped by day; the visits on the other days are tried, one by one,
on the week's busiest day, in a free slot of their own unit's opening hours that clashes
with nothing hard. Advice only: native bookings can be moved here, synced ones name whom
to ask.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from calendar_app.domain.clashes import Preferences, Visit, WeeklyWindow
from calendar_app.domain.suggestions import suggest


@dataclass(frozen=True)
class ReviewVisit:
    visit: Visit
    provider_id: int
    provider: str
    contact: str  # the unit's phone, to ask for a move of a synced booking
    movable_here: bool  # a native booking of the viewer's own unit
    in_person: bool
    shown: bool  # the viewer may see what it is


@dataclass(frozen=True)
class Move:
    item: ReviewVisit
    to_start: datetime
    to_end: datetime


@dataclass(frozen=True)
class WeekReview:
    year: int
    week: int
    visits: int
    days: int
    moves: tuple[Move, ...]


def review(
    items: Sequence[ReviewVisit],
    prefs: Preferences,
    opening_for: Callable[[int], Sequence[WeeklyWindow]],
    first_day: date,
    *,
    weeks: int,
    now: datetime,
) -> list[WeekReview]:
    """Weeks in [first_day, first_day + weeks) with visits on two days or more."""
    zone = prefs.zone
    monday = first_day - timedelta(days=first_day.weekday())
    result = []
    for offset in range(weeks):
        week_start = monday + timedelta(weeks=offset)
        week_days = {week_start + timedelta(days=i) for i in range(7)}
        travel = [
            item
            for item in items
            if item.in_person
            and not item.visit.cancelled
            and item.visit.start.astimezone(zone).date() in week_days
        ]
        by_day: dict[date, list[ReviewVisit]] = defaultdict(list)
        for item in travel:
            by_day[item.visit.start.astimezone(zone).date()].append(item)
        if len(by_day) < 2:
            continue
        target = max(sorted(by_day), key=lambda d: len(by_day[d]))
        placed = [i.visit for i in items if not i.visit.cancelled]
        moves: list[Move] = []
        for day in sorted(by_day):
            if day == target:
                continue
            for item in by_day[day]:
                if not item.shown:
                    continue
                others = [v for v in placed if v.key != item.visit.key]
                minutes = int((item.visit.end - item.visit.start).total_seconds() // 60)
                slots = suggest(
                    minutes,
                    target,
                    target,
                    opening_for(item.provider_id),
                    others,
                    prefs,
                    item.visit.location,
                    not_before=now,
                    limit=1,
                )
                if slots:
                    slot = slots[0]
                    moves.append(Move(item, slot.start, slot.end))
                    placed = [*others, replace(item.visit, start=slot.start, end=slot.end)]
        iso = week_start.isocalendar()
        result.append(WeekReview(iso.year, iso.week, len(travel), len(by_day), tuple(moves)))
    return result
