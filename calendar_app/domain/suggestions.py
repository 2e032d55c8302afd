"""Same-day suggestions (DESIGN §4): free slots ranked so the person travels less.

A slot ranks higher on a day the person already travels for a visit (best at the same
address, then in the same town), inside the times that suit, with no hard clash and few
soft warnings, and earlier. Suggestions advise; they never block.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from calendar_app.domain.clashes import (
    ClashWarning,
    Preferences,
    Visit,
    WeeklyWindow,
    check,
    normalise_address,
    postal_town,
)

STEP = timedelta(minutes=15)
PER_DAY = 2


@dataclass(frozen=True)
class Reason:
    """Why a slot is suggested; the page words it ("Samma dag som ditt besök på …")."""

    kind: str  # same_day_same_place, same_day_same_town, same_day, suits, free_day
    other: str = ""
    other_start: datetime | None = None


@dataclass(frozen=True)
class Suggestion:
    start: datetime
    end: datetime
    score: int
    reason: Reason
    warnings: tuple[ClashWarning, ...]


def _same_day_reason(location: str, visits: Sequence[Visit]) -> tuple[int, Reason] | None:
    best: tuple[int, Reason] | None = None
    for visit in visits:
        if normalise_address(location) and normalise_address(location) == normalise_address(
            visit.location
        ):
            option = (150, Reason("same_day_same_place", visit.label, visit.start))
        elif postal_town(location) and postal_town(location) == postal_town(visit.location):
            option = (125, Reason("same_day_same_town", visit.label, visit.start))
        else:
            option = (100, Reason("same_day", visit.label, visit.start))
        if best is None or option[0] > best[0]:
            best = option
    return best


def suggest(
    minutes: int,
    first_day: date,
    last_day: date,
    opening: Sequence[WeeklyWindow],
    existing: Sequence[Visit],
    prefs: Preferences,
    location: str,
    *,
    not_before: datetime,
    limit: int = 5,
) -> list[Suggestion]:
    """The best free slots of ``minutes`` within the unit's opening hours, best first."""
    zone = prefs.zone
    length = timedelta(minutes=minutes)
    by_day: dict[date, list[Visit]] = defaultdict(list)
    for visit in existing:
        if not visit.cancelled:
            by_day[visit.start.astimezone(zone).date()].append(visit)
    found: list[Suggestion] = []
    day = first_day
    while day <= last_day:
        near = by_day[day - timedelta(days=1)] + by_day[day] + by_day[day + timedelta(days=1)]
        same_day = _same_day_reason(location, [v for v in by_day[day] if v.travels])
        for window in opening:
            for open_start, open_end in window.instances(day, day, zone):
                start = open_start
                while start + length <= open_end:
                    if start >= not_before:
                        slot = _rate(start, start + length, location, near, prefs, same_day)
                        if slot is not None:
                            found.append(slot)
                    start += STEP
        day += timedelta(days=1)
    found.sort(key=lambda s: (-s.score, s.start))
    chosen: list[Suggestion] = []
    per_day: dict[date, int] = defaultdict(int)
    for slot in found:
        slot_day = slot.start.astimezone(zone).date()
        if per_day[slot_day] < PER_DAY:
            per_day[slot_day] += 1
            chosen.append(slot)
        if len(chosen) == limit:
            break
    return chosen


def _rate(
    start: datetime,
    end: datetime,
    location: str,
    near: list[Visit],
    prefs: Preferences,
    same_day: tuple[int, Reason] | None,
) -> Suggestion | None:
    warnings = check(start, end, location, near, prefs)
    if any(w.hard for w in warnings):
        return None
    suits = not any(w.kind == "outside_suitable" for w in warnings)
    score = (20 if suits and prefs.suitable else 0) - 10 * len(warnings)
    if same_day is not None:
        score += same_day[0]
        reason = same_day[1]
    else:
        reason = Reason("suits" if suits and prefs.suitable else "free_day")
    return Suggestion(start, end, score, reason, tuple(warnings))
