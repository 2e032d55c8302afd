"""One person's occurrences from all sources merged: duplicates joined, overlaps marked."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from calendar_app.domain.intervals import Interval, overlapping_pairs


@dataclass(frozen=True, slots=True)
class Provenance:
    provider: str
    provider_kind: str
    source: str


@dataclass(slots=True)
class Occurrence:
    """One visit on the calendar; times are aware UTC, all-day ones also carry dates.

    Mutable on purpose: merging and overlap marking fill in the last fields in place,
    since copying thousands of occurrences per request costs more than the query.
    """

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
    practitioner_photo: str | None = None  # the digest of a photo we serve
    interpreter: bool = False
    interpreter_language: str | None = None
    transport_needed: bool = False
    origin: str = "synced"
    overlaps: tuple[str, ...] = ()
    also_from: tuple[Provenance, ...] = ()
    likely_duplicate_of: tuple[str, ...] = ()
    detail_hidden: bool = False


@functools.lru_cache(maxsize=4096)
def _norm_title(title: str) -> str:
    return re.sub(r"\W+", " ", title.casefold()).strip()


def merge_sources(items: Sequence[Occurrence]) -> list[Occurrence]:
    """Join the same visit delivered by several sources; flag look-alikes.

    Returns the occurrences sorted by start, end, title and uid.

    The same UID at the same time from two sources is shown once with both provenances.
    Different UIDs at the same time with the same title from different units are kept,
    each flagged as a likely duplicate of the other, never silently dropped.
    """
    joined: dict[tuple[str, str, datetime, datetime], Occurrence] = {}
    for occ in sorted(items, key=lambda o: (o.start, o.end, o.title, o.uid, o.booking_id)):
        key = (occ.uid, occ.recurrence_key, occ.start, occ.end)
        first = joined.get(key)
        if first is None:
            joined[key] = occ
        elif first.source != occ.source or first.provider != occ.provider:
            first.also_from = (
                *first.also_from,
                Provenance(occ.provider, occ.provider_kind, occ.source),
            )
    result = list(joined.values())
    by_slot: dict[tuple[datetime, datetime, str], list[Occurrence]] = {}
    for occ in result:
        if occ.status != "cancelled" and occ.title.strip():
            by_slot.setdefault((occ.start, occ.end, _norm_title(occ.title)), []).append(occ)
    for group in by_slot.values():
        if len(group) < 2:
            continue
        uids = {occ.uid for occ in group}
        if len(uids) < 2:
            continue
        for occ in group:
            occ.likely_duplicate_of = tuple(sorted(uids - {occ.uid}))
    return result


def mark_overlaps(items: Sequence[Occurrence]) -> list[Occurrence]:
    """Set ``overlaps`` to the uids each busy, non-cancelled occurrence clashes with."""
    busy = [
        Interval(index, occ.start, occ.end)
        for index, occ in enumerate(items)
        if occ.status != "cancelled" and not occ.transparent
    ]
    for occ in items:
        occ.overlaps = ()
    for index, others in overlapping_pairs(busy).items():
        if others:
            assert isinstance(index, int)
            items[index].overlaps = tuple(sorted({items[cast(int, i)].uid for i in others}))
    return list(items)
