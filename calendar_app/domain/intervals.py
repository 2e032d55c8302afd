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

    Keys without any overlap are left out. The sweep runs on POSIX timestamps kept in
    plain lists and sorts indexes by a float key: that is what CPython sorts and compares
    fastest, and it keeps the working set small.
    """
    starts = [item.start.timestamp() for item in items]
    ends = [item.end.timestamp() for item in items]
    found: dict[int, set[int]] = {}
    active: list[tuple[float, int]] = []  # heap of (end, index)
    for n in sorted(range(len(items)), key=starts.__getitem__):
        start, end = starts[n], ends[n]
        # Drop what ended before this start; a zero-length interval at this very instant
        # may still overlap it, so it stays until time moves past.
        while active and (
            active[0][0] < start or (active[0][0] == start and starts[active[0][1]] != active[0][0])
        ):
            heapq.heappop(active)
        for other_end, m in active:
            if _overlap(starts[m], other_end, start, end):
                found.setdefault(n, set()).add(m)
                found.setdefault(m, set()).add(n)
        heapq.heappush(active, (end, n))
    result: dict[Hashable, set[Hashable]] = {}
    for n, others in found.items():
        key = items[n].key
        mapped = {items[m].key for m in others} - {key}
        if mapped:
            result.setdefault(key, set()).update(mapped)
    return result


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    # overlaps() on plain numbers, with the same rules, for the sweep's inner loop
    if a_start == a_end:
        return b_start <= a_start < b_end and b_start != b_end
    if b_start == b_end:
        return a_start <= b_start < a_end
    return a_start < b_end and b_start < a_end
