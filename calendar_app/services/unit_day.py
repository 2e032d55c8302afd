"""A unit's day list: every visit the caregiver's own unit has that day, person by person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calendar_app.domain.merge import Occurrence
from calendar_app.models import Booking, CareRelationship, Person, Role
from calendar_app.services.access import AccessDenied, Actor, audit
from calendar_app.services.calendar import local_midnight, merged_calendar


@dataclass(frozen=True)
class UnitVisit:
    person_id: int
    person_name: str
    protected_identity: bool
    occurrence: Occurrence


def unit_day(
    session: Session, actor: Actor, day: date, *, zone: ZoneInfo, now: datetime
) -> list[UnitVisit]:
    """The unit's visits on ``day`` (in ``zone``), by start time; each person whose visits
    are listed gets one audit row, as for opening their calendar. Commits."""
    if actor.role != Role.CAREGIVER or actor.provider_id is None:
        raise AccessDenied()
    start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
    # Only people the unit cares for now: an ended care relationship ends the unit's view.
    people = session.scalars(
        select(Person)
        .join(Booking, Booking.person_id == Person.id)
        .join(
            CareRelationship,
            (CareRelationship.person_id == Person.id)
            & (CareRelationship.provider_id == actor.provider_id)
            & CareRelationship.ended_utc.is_(None),
        )
        .where(
            Booking.provider_id == actor.provider_id,
            Booking.range_start_utc < end,
            or_(Booking.range_end_utc.is_(None), Booking.range_end_utc >= start),
            Person.deleted_utc.is_(None),
        )
        .distinct()
    ).all()
    found: list[UnitVisit] = []
    for person in people:
        mine = [
            occ
            for occ in merged_calendar(
                session, person.id, day, day + timedelta(days=1), zone=zone, max_days=1
            )
            if occ.provider_id == actor.provider_id and occ.start < end and occ.end > start
        ]
        if mine:
            audit(session, actor, person.id, "unit.day_list", now=now, detail=day.isoformat())
            found.extend(
                UnitVisit(person.id, person.name, person.protected_identity, o) for o in mine
            )
    session.commit()
    return sorted(found, key=lambda v: (v.occurrence.start, v.person_name))
