"""Min översikt: the coming weeks' visits and every unit with whom to contact, on one page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.merge import Occurrence
from calendar_app.models import CareRelationship, Provider, ProviderKind, Role
from calendar_app.services.access import Actor
from calendar_app.services.calendar import CalendarView, read_calendar

WEEKS = 4


@dataclass(frozen=True)
class UnitContact:
    """Whom to contact at a unit ("vem ska jag kontakta?")."""

    name: str
    contact_name: str | None
    phone: str | None
    address: str | None


@dataclass(frozen=True)
class Overview:
    calendar: CalendarView
    days: list[tuple[date, list[Occurrence]]]  # only days with visits, in order
    units: list[UnitContact]


def read_overview(
    session: Session,
    actor: Actor,
    person_id: int,
    first_day: date,
    *,
    now: datetime,
    max_days: int,
    weeks: int = WEEKS,
) -> Overview:
    """The overview as ``actor`` may see it; the calendar read is audited like any other.

    The units are those whose visits the viewer sees named, and, for the person, every unit
    with a care relationship; a protected person's units are listed without addresses to
    anyone but the person.
    """
    view = read_calendar(
        session, actor, person_id, first_day, first_day + timedelta(days=7 * weeks),
        now=now, max_days=max_days,
    )  # fmt: skip
    zone = ZoneInfo(view.timezone)
    by_day: dict[date, list[Occurrence]] = {}
    for occ in view.occurrences:
        day = occ.start.astimezone(zone).date()
        if occ.all_day and occ.start_date:
            day = occ.start_date
        by_day.setdefault(max(day, first_day), []).append(occ)
    named = {o.provider_id for o in view.occurrences if o.provider}
    if actor.role == Role.PERSON:
        named |= set(
            session.scalars(
                select(CareRelationship.provider_id).where(
                    CareRelationship.person_id == person_id, CareRelationship.ended_utc.is_(None)
                )
            )
        )
    providers = session.scalars(
        select(Provider)
        .where(Provider.id.in_(named), Provider.kind != ProviderKind.PERSONAL)
        .order_by(Provider.name)
    ).all()
    session.commit()
    hide_addresses = view.protected_identity and actor.role != Role.PERSON
    units = [
        UnitContact(
            name=p.name,
            contact_name=p.contact_name,
            phone=p.phone,
            address=None if hide_addresses else p.address,
        )
        for p in providers
    ]
    return Overview(calendar=view, days=sorted(by_day.items()), units=units)
