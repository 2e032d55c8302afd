"""One person's occurrences from all sources merged: duplicates joined, overlaps marked."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from calendar_app.domain.intervals import Interval, overlapping_pairs


@dataclass(frozen=True, slots=True)
class Provenance:
    provider: str
    provider_kind: str
    source: str


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One visit on the calendar; times are aware UTC, all-day ones also carry dates."""

    booking_id: int
    uid: str
    recurrence_key: str  # '' for a single event
    start: datetime
    end: datetime
    all_day: bool
    start_date: date | None
    end_date: date | None
    title: str
    location: str
    provider_id: int
    provider: str
    provider_kind: str
    source: str
    status: str
    transparent: bool = False
    mode: str = "in_person"
    practitioner_name: str | None = None
    origin: str = "synced"
    overlaps: tuple[str, ...] = ()
    also_from: tuple[Provenance, ...] = ()
    likely_duplicate_of: tuple[str, ...] = ()
    detail_hidden: bool = False


def _norm_title(title: str) -> str:
    return re.sub(r"\W+", " ", title.casefold()).strip()


def merge_sources(items: Sequence[Occurrence]) -> list[Occurrence]:
    """Join the same visit delivered by several sources; flag look-alikes.

    The same UID at the same time from two sources is shown once with both provenances.
    Different UIDs at the same time with the same title from different units are kept,
    each flagged as a likely duplicate of the other, never silently dropped.
    """
    joined: dict[tuple[str, str, datetime, datetime], Occurrence] = {}
    for occ in sorted(items, key=lambda o: (o.start, o.end, o.booking_id)):
        key = (occ.uid, occ.recurrence_key, occ.start, occ.end)
        first = joined.get(key)
        if first is None or first.source == occ.source and first.provider == occ.provider:
            joined.setdefault(key, occ)
            continue
        provenance = Provenance(occ.provider, occ.provider_kind, occ.source)
        joined[key] = dataclasses.replace(first, also_from=(*first.also_from, provenance))
    result = list(joined.values())
    by_slot: dict[tuple[datetime, datetime, str], list[int]] = {}
    for index, occ in enumerate(result):
        if occ.status != "cancelled" and occ.title.strip():
            by_slot.setdefault((occ.start, occ.end, _norm_title(occ.title)), []).append(index)
    for indexes in by_slot.values():
        uids = {result[i].uid for i in indexes}
        if len(uids) < 2:
            continue
        for i in indexes:
            others = tuple(sorted(uids - {result[i].uid}))
            result[i] = dataclasses.replace(result[i], likely_duplicate_of=others)
    return result


def mark_overlaps(items: Sequence[Occurrence]) -> list[Occurrence]:
    """Set ``overlaps`` to the uids each busy, non-cancelled occurrence clashes with."""
    busy = [
        Interval(index, occ.start, occ.end)
        for index, occ in enumerate(items)
        if occ.status != "cancelled" and not occ.transparent
    ]
    pairs = overlapping_pairs(busy)
    result = list(items)
    for index, others in pairs.items():
        assert isinstance(index, int)
        uids = sorted({items[i].uid for i in others if isinstance(i, int)})
        if uids:
            result[index] = dataclasses.replace(result[index], overlaps=tuple(uids))
    return result
