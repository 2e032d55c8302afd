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
    provider_neutral: bool = False  # the unit is named only neutrally to this viewer
    overlaps: tuple[str, ...] = ()
    also_from: tuple[Provenance, ...] = ()
    likely_duplicate_of: tuple[str, ...] = ()
    detail_hidden: bool = False


@functools.lru_cache(maxsize=4096)
def _norm_title(title: str) -> str:
    return re.sub(r"\W+", " ", title.casefold()).strip()


def merge_sources(items: Sequence[Occurrence]) -> list[Occurrence]:
    """Join the same visit delivered by several sources of one unit; flag look-alikes.

    Returns the occurrences sorted by start, end, title and uid.

    The same UID at the same time from two sources of the same unit (its feed and its
    CalDAV calendar, say) is shown once with both provenances. Copies are never joined
    across units: a UID is the sender's to choose, so one unit's booking must not hide,
    rename or stand in for another unit's. Different units' visits at the same time with
    the same title are kept, each flagged as a likely duplicate of the other, never
    silently dropped.
    """
    joined: dict[tuple[int, str, str, datetime, datetime], Occurrence] = {}
    for occ in sorted(items, key=lambda o: (o.start, o.end, o.title, o.uid, o.booking_id)):
        key = (occ.provider_id, occ.uid, occ.recurrence_key, occ.start, occ.end)
        first = joined.get(key)
        if first is None:
            joined[key] = occ
        elif first.source != occ.source:
            first.also_from = (
                *first.also_from,
                Provenance(occ.provider, occ.provider_kind, occ.source),
            )
    result = list(joined.values())
    likely_duplicates(result)
    return result


def likely_duplicates(items: Sequence[Occurrence]) -> None:
    """Set ``likely_duplicate_of`` (in place) on visits that look like one visit delivered
    twice: the same UID at the same time from different units, or different UIDs at the
    same time with the same title. Each names the others' uids."""
    groups: dict[tuple[object, ...], list[Occurrence]] = {}
    for occ in items:
        occ.likely_duplicate_of = ()
        if occ.status == "cancelled":
            continue
        groups.setdefault(("uid", occ.uid, occ.recurrence_key, occ.start, occ.end), []).append(occ)
        if occ.title.strip():
            groups.setdefault(("title", occ.start, occ.end, _norm_title(occ.title)), []).append(occ)
    for (kind, *_), group in groups.items():
        if len(group) < 2 or (kind == "title" and len({o.uid for o in group}) < 2):
            continue
        for occ in group:
            others = {o.uid for o in group if o is not occ}
            occ.likely_duplicate_of = tuple(sorted({*occ.likely_duplicate_of, *others}))


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
