"""Half-open time intervals [start, end) and overlap finding.

Back-to-back visits (one ends when the next starts) do not overlap.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Interval:
    key: Hashable
    start: datetime
    end: datetime


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Return whether [a_start, a_end) and [b_start, b_end) share an instant.

    A zero-length interval overlaps an interval that strictly contains its instant.
    """
    if a_start == a_end:
        return b_start <= a_start < b_end and b_start != b_end
    if b_start == b_end:
        return a_start <= b_start < a_end
    return a_start < b_end and b_start < a_end


def overlapping_pairs(items: Sequence[Interval]) -> dict[Hashable, set[Hashable]]:
    """Map each key that overlaps anything to the keys it overlaps, in O(n log n + pairs).

    Keys without any overlap are left out.
    """
    result: dict[Hashable, set[Hashable]] = {}
    active: list[tuple[datetime, int, Interval]] = []  # heap by end
    for index, item in enumerate(sorted(items, key=lambda i: (i.start, i.end))):
        # Drop what ended before this start; a zero-length interval at this very instant
        # may still overlap it, so it stays until time moves past.
        while active and (
            active[0][0] < item.start
            or (active[0][0] == item.start and active[0][2].start != active[0][2].end)
        ):
            heapq.heappop(active)
        for _end, _i, other in active:
            if other.key != item.key and overlaps(other.start, other.end, item.start, item.end):
                result.setdefault(item.key, set()).add(other.key)
                result.setdefault(other.key, set()).add(item.key)
        heapq.heappush(active, (item.end, index, item))
    return result
