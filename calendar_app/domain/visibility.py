"""What a viewer may see of a visit: the one place every surface asks.

This is health and social-care data about people with mental ill-health. Who sees a unit's
visits at which level is decided once per viewer and unit, as a :class:`Sight`
(``services.access.Access.sight_for``); the functions here apply a sight to a visit. Pages,
the API, feeds, Min översikt and its PDF, SMS, source warnings, clash and travel
explanations, duplicate hints and suggestions all get their data through them, so a rule is
never written twice.

The levels:

* **full**: everything the unit sent, but the place when ``place`` is off (a person with
  protected identity, seen by another unit).
* **time and place**: when, where and how (in person, by phone or video), which unit (named
  neutrally if the person marked it sensitive) and whether it is cancelled; not what the
  visit is, whom the person meets, interpreter, transport, terms, notes or where the booking
  came from.
* **busy**: only that the time is taken. A cancelled or free ("transparent") visit takes no
  time, so a busy-only viewer does not see it at all.

A hidden visit takes part in the clash, travel and suggestion rules only as what the viewer
may see of it: busy from-to, at a place the viewer may see or none ("place unknown").

Pure: no Flask, database or HTTP here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from calendar_app.domain.merge import Occurrence, likely_duplicates, mark_overlaps


class ViewLevel(enum.StrEnum):
    """How much of a unit's visits a viewer sees."""

    FULL = "full"
    TIME_PLACE = "time_place"
    BUSY = "busy"


BUSY_TITLE = "Upptagen"


@dataclass(frozen=True, slots=True)
class Sight:
    """What one viewer may see of one unit's visits to one person."""

    level: ViewLevel
    place: bool = True  # the visit's place (and the unit's address) may be shown
    # The unit's own name; else it is named neutrally ("your care provider", in the
    # surface's language): a sensitive unit's name could tell what care the person gets.
    unit_named: bool = True

    @property
    def full(self) -> bool:
        """Whether nothing at all is hidden."""
        return self.level == ViewLevel.FULL and self.place and self.unit_named

    @property
    def sees_what(self) -> bool:
        """Whether the viewer sees what the visit is (title, whom, notes, terms)."""
        return self.level == ViewLevel.FULL

    @property
    def sees_unit(self) -> bool:
        """Whether the viewer sees which unit the visit is with (perhaps neutrally)."""
        return self.level != ViewLevel.BUSY


FULL_SIGHT = Sight(ViewLevel.FULL)


def names_unit(sight: Sight) -> bool:
    """Whether the viewer may see the unit's own name."""
    return sight.sees_unit and sight.unit_named


def unit_label(name: str, sight: Sight) -> str:
    """The unit's name if the viewer may see it, else '' (then named neutrally, or not at
    all when busy: see ``neutral_unit``)."""
    return name if names_unit(sight) else ""


def neutral_unit(sight: Sight) -> bool:
    """Whether the unit is shown, but only by a neutral word."""
    return sight.sees_unit and not names_unit(sight)


def takes_time(occ: Occurrence) -> bool:
    """Whether the visit occupies its time (not cancelled, not marked free)."""
    return occ.status != "cancelled" and not occ.transparent


def shown_occurrence(occ: Occurrence, sight: Sight) -> Occurrence | None:
    """The occurrence as the viewer may see it, or None when there is nothing to see.

    Always a new object when anything is hidden: merged occurrences may be shared through
    the calendar cache.
    """
    if sight.full:
        return occ
    if sight.level == ViewLevel.BUSY:
        if not takes_time(occ):
            return None
        return dataclasses.replace(
            occ,
            uid=f"busy-{occ.booking_id}-{occ.recurrence_key}",
            title=BUSY_TITLE,
            location="",
            provider="",
            provider_kind="",
            source="",
            status="confirmed",
            practitioner_name=None,
            practitioner_photo=None,
            interpreter=False,
            interpreter_language=None,
            transport_needed=False,
            mode="in_person",
            origin="synced",
            overlaps=(),
            also_from=(),
            likely_duplicate_of=(),
            detail_hidden=True,
        )
    location = occ.location if sight.place else ""
    if sight.level == ViewLevel.FULL:  # only the place (or the unit's name) is withheld
        return dataclasses.replace(
            occ,
            location=location,
            provider=unit_label(occ.provider, sight),
            provider_neutral=neutral_unit(sight),
            detail_hidden=True,
        )
    return dataclasses.replace(
        occ,
        uid=f"busy-{occ.booking_id}-{occ.recurrence_key}",
        title=BUSY_TITLE,
        location=location,
        provider=unit_label(occ.provider, sight),
        provider_kind=occ.provider_kind if names_unit(sight) else "",
        provider_neutral=neutral_unit(sight),
        source="",
        practitioner_name=None,
        practitioner_photo=None,
        interpreter=False,
        interpreter_language=None,
        transport_needed=False,
        origin="synced",
        overlaps=(),
        also_from=(),
        likely_duplicate_of=(),
        detail_hidden=True,
    )


# Which sight applies to a unit's visits: (provider id, provider kind) -> Sight.
SightOf = Callable[[int, str], "Sight"]


def shown_calendar(occurrences: Iterable[Occurrence], sight_of: SightOf) -> list[Occurrence]:
    """The occurrences as the viewer may see them, with overlaps and duplicate hints worked
    out again on what is shown, so that no hint names or depends on a hidden visit."""
    shown: list[Occurrence] = []
    hidden_any = False
    for occ in occurrences:
        sight = sight_of(occ.provider_id, occ.provider_kind)
        seen = shown_occurrence(occ, sight)
        if seen is None:
            hidden_any = True
            continue
        hidden_any = hidden_any or seen is not occ
        shown.append(seen)
    if not hidden_any:
        return shown
    # On copies of what is shown in full: the originals may be shared through the cache.
    copies = [o if o.detail_hidden else dataclasses.replace(o) for o in shown]
    likely_duplicates([o for o in copies if not o.detail_hidden])
    return mark_overlaps(copies)


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """Everything a surface may say about one visit, before the viewer's sight is applied.

    Built from a booking (and the occurrence asked for) by the services; the pages, the
    per-visit calendar file, Min översikt and SMS show only what :func:`shown_facts` leaves.
    """

    booking_id: int
    uid: str
    start: datetime
    end: datetime
    all_day: bool
    status: str
    title: str
    location: str
    mode: str
    unit: str  # '' when the viewer may not see the unit's name (see unit_neutral)
    unit_kind: str
    unit_phone: str
    unit_contact: str
    unit_address: str
    origin: str
    source: str
    description: str = ""
    practitioner_name: str = ""
    practitioner_photo: str = ""
    interpreter: bool = False
    interpreter_language: str = ""
    transport_needed: bool = False
    cancellation_terms: str = ""
    no_show_fee: str = ""
    care_type: str = ""
    time_type: str = ""
    cancel_allowed: bool | None = None
    rebook_allowed: bool | None = None
    message_allowed: bool | None = None
    last_seen_utc: datetime | None = None
    unit_neutral: bool = False  # the unit is there, named only neutrally
    hidden: bool = False  # something was withheld from this viewer
    what_hidden: bool = False  # what the visit is (title, whom, notes, terms) was withheld
    busy_only: bool = False  # the viewer sees only that the time is taken


def _time_only(facts: VisitFacts) -> VisitFacts:
    """Only when the visit is, and whether it is cancelled: the base of the hidden levels."""
    return VisitFacts(
        booking_id=facts.booking_id,
        uid=f"busy-{facts.booking_id}",
        start=facts.start,
        end=facts.end,
        all_day=facts.all_day,
        status="cancelled" if facts.status == "cancelled" else "confirmed",
        title=BUSY_TITLE,
        location="",
        mode="in_person",
        unit="",
        unit_kind="",
        unit_phone="",
        unit_contact="",
        unit_address="",
        origin="synced",
        source="",
        hidden=True,
        what_hidden=True,
        busy_only=True,
    )


def shown_facts(facts: VisitFacts, sight: Sight) -> VisitFacts:
    """The visit as the viewer may see it (the visit page, its calendar file, SMS)."""
    if sight.full:
        return facts
    if sight.level == ViewLevel.BUSY:
        return _time_only(facts)
    named = names_unit(sight)
    with_unit = dataclasses.replace(
        facts,
        location=facts.location if sight.place else "",
        unit=unit_label(facts.unit, sight),
        unit_phone=facts.unit_phone if named else "",
        unit_contact=facts.unit_contact if named else "",
        unit_address=facts.unit_address if named and sight.place else "",
        unit_neutral=neutral_unit(sight),
        hidden=True,
    )
    if sight.level == ViewLevel.FULL:  # only the place, or the unit's name, is withheld
        return with_unit
    # Time and place: when, where, how, which unit; not what the visit is.
    return dataclasses.replace(
        _time_only(facts),
        status=facts.status,
        mode=facts.mode,
        location=with_unit.location,
        unit=with_unit.unit,
        unit_kind=facts.unit_kind if named else "",
        unit_phone=with_unit.unit_phone,
        unit_contact=with_unit.unit_contact,
        unit_address=with_unit.unit_address,
        unit_neutral=with_unit.unit_neutral,
        busy_only=False,
    )


@dataclass(frozen=True, slots=True)
class SeenVisit:
    """An existing visit as the clash, travel and suggestion rules may use it for a viewer:
    only what the viewer may see (a hidden place is unknown)."""

    key: str
    start: datetime
    end: datetime
    label: str
    location: str
    takes_time: bool
    travels: bool
    unit: str
    shown_in_full: bool


def seen_visit(occ: Occurrence, sight: Sight, key: str) -> SeenVisit:
    """What the rules may know of ``occ`` for a viewer with ``sight``."""
    shown = shown_occurrence(occ, sight)
    if shown is None:  # a cancelled or free visit: takes no time, and is not shown
        return SeenVisit(key, occ.start, occ.end, BUSY_TITLE, "", False, False, "", False)
    if shown.detail_hidden and sight.level != ViewLevel.FULL:
        label = f"{BUSY_TITLE} ({shown.location})" if shown.location else BUSY_TITLE
    else:
        label = shown.title
    return SeenVisit(
        key=key,
        start=occ.start,
        end=occ.end,
        label=label,
        location=shown.location,
        takes_time=takes_time(occ),
        # A busy-only viewer does not know how the visit happens: it may need a journey,
        # but with its place unknown no travel time is judged from it.
        travels=shown.mode == "in_person",
        unit=shown.provider,
        shown_in_full=not shown.detail_hidden,
    )
