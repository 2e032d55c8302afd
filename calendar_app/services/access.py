"""Who may see a person's calendar, at what detail; every other reader is audited.

Every view and API call that touches a person's data goes through :func:`authorize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import AuditEvent, CareRelationship, HelperGrant, Person, Role, ViewLevel


@dataclass(frozen=True)
class Actor:
    """Whoever acts: a signed-in user, or the operator at the command line."""

    user_id: int | None
    role: Role | None
    label: str
    person_id: int | None = None
    provider_id: int | None = None

    @classmethod
    def operator(cls) -> Actor:
        return cls(user_id=None, role=None, label="operator (command line)")


@dataclass(frozen=True)
class Access:
    """What an allowed actor sees: ``own_provider_id`` in full, others at ``other_level``."""

    person_id: int
    other_level: ViewLevel
    own_provider_id: int | None = None

    def level_for(self, provider_id: int) -> ViewLevel:
        if self.own_provider_id is not None and provider_id == self.own_provider_id:
            return ViewLevel.FULL
        return self.other_level


class AccessDenied(DomainError):
    def __init__(self) -> None:
        super().__init__("access.denied", "you may not see this person's calendar")


READ_ACTIONS = {"calendar.read", "booking.read"}
WRITE_ACTIONS = {"calendar.import"}


def authorize(
    session: Session, actor: Actor, person_id: int, action: str, *, now: datetime
) -> Access:
    """Allow or refuse ``action`` on the person's calendar; audit reads by others.

    The audit row is added to the session; the calling use case commits it.
    """
    access = _decide(session, actor, person_id, action, now)
    if access is None:
        raise AccessDenied()
    if action in READ_ACTIONS and actor.person_id != person_id:
        session.add(
            AuditEvent(
                at_utc=now,
                person_id=person_id,
                actor_user_id=actor.user_id,
                actor_label=actor.label[:200],
                action=action,
            )
        )
    return access


def _decide(
    session: Session, actor: Actor, person_id: int, action: str, now: datetime
) -> Access | None:
    if action not in READ_ACTIONS | WRITE_ACTIONS:
        return None
    if actor.role is None and actor.user_id is None:  # the operator at the command line
        return Access(person_id=person_id, other_level=ViewLevel.FULL)
    if actor.role == Role.PERSON:
        if actor.person_id == person_id:
            return Access(person_id=person_id, other_level=ViewLevel.FULL)
        return None
    if actor.role == Role.HELPER and action in READ_ACTIONS:
        grant = session.scalars(
            select(HelperGrant).where(
                HelperGrant.person_id == person_id,
                HelperGrant.helper_user_id == actor.user_id,
                HelperGrant.withdrawn_utc.is_(None),
                HelperGrant.view_level.is_not(None),
            )
        ).first()
        if grant is None or grant.view_level is None:
            return None
        return Access(person_id=person_id, other_level=grant.view_level)
    if actor.role == Role.CAREGIVER and actor.provider_id is not None:
        related = session.scalars(
            select(CareRelationship.id).where(
                CareRelationship.person_id == person_id,
                CareRelationship.provider_id == actor.provider_id,
                CareRelationship.ended_utc.is_(None),
            )
        ).first()
        if related is None:
            return None
        # Other units' bookings are "busy" only until the person consents to more.
        return Access(
            person_id=person_id, other_level=ViewLevel.BUSY, own_provider_id=actor.provider_id
        )
    return None  # administrators register units and accounts; they do not read calendars


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    protected_identity: bool


def visible_people(session: Session, actor: Actor) -> list[PersonRef]:
    """The people whose calendars ``actor`` may open (for helpers and caregivers)."""

    if actor.role == Role.HELPER:
        query = (
            select(Person)
            .join(HelperGrant, HelperGrant.person_id == Person.id)
            .where(
                HelperGrant.helper_user_id == actor.user_id,
                HelperGrant.withdrawn_utc.is_(None),
                HelperGrant.view_level.is_not(None),
            )
        )
    elif actor.role == Role.CAREGIVER and actor.provider_id is not None:
        query = (
            select(Person)
            .join(CareRelationship, CareRelationship.person_id == Person.id)
            .where(
                CareRelationship.provider_id == actor.provider_id,
                CareRelationship.ended_utc.is_(None),
            )
        )
    else:
        return []
    return [
        PersonRef(p.id, p.name, p.protected_identity)
        for p in session.scalars(query.order_by(Person.name)).unique()
    ]
