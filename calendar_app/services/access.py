"""Who may see a person's data, at what detail; every reader but the person is audited.

Every view and API call that touches a person's data goes through :func:`authorize`, and
gets an :class:`Access` whose :meth:`Access.sight_for` decides, once, what the viewer may
see of each unit's visits (applied by :mod:`calendar_app.domain.visibility`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.domain.visibility import Sight
from calendar_app.models import (
    AuditEvent,
    CareRelationship,
    HelperGrant,
    Person,
    Role,
    UnitConsent,
    ViewLevel,
)


@dataclass(frozen=True)
class Actor:
    """Whoever acts: a signed-in user, or the operator at the command line."""

    user_id: int | None
    role: Role | None
    label: str
    person_id: int | None = None
    provider_id: int | None = None
    unit_name: str = ""
    remote_addr: str = ""
    # An API token's scopes; None for a signed-in user, whose role decides.
    scopes: frozenset[str] | None = None

    @classmethod
    def operator(cls) -> Actor:
        return cls(user_id=None, role=None, label="operator (command line)")


PERSONAL_KIND = "personal"
LEVEL_ORDER = {ViewLevel.BUSY: 0, ViewLevel.TIME_PLACE: 1, ViewLevel.FULL: 2}


@dataclass(frozen=True)
class Access:
    """What an allowed actor sees of each unit's bookings.

    ``own_provider_id`` (a caregiver's unit) is seen in full; other units at
    ``other_level``. For a person with protected identity, addresses of units other than
    the viewer's own are never shown (``hide_other_addresses``). Units the person marked
    sensitive are named neutrally to anyone who sees them below the full level.
    """

    person_id: int
    other_level: ViewLevel
    own_provider_id: int | None = None
    hide_other_addresses: bool = False
    may_manage: bool = False
    grants: frozenset[str] = field(default_factory=frozenset)
    # Only the person sees their own calendars (work, school) in detail; to everyone
    # else those events are busy time.
    sees_personal: bool = False
    sensitive_units: frozenset[int] = field(default_factory=frozenset)

    def sight_for(self, provider_id: int, provider_kind: str = "") -> Sight:
        """What this viewer may see of that unit's visits: the one decision every surface
        applies (see calendar_app.domain.visibility)."""
        if provider_kind == PERSONAL_KIND and not self.sees_personal:
            return Sight(ViewLevel.BUSY, place=False, unit_named=False)
        own = self.own_provider_id is not None and provider_id == self.own_provider_id
        if own:
            return Sight(ViewLevel.FULL)
        return Sight(
            self.other_level,
            place=not self.hide_other_addresses,
            # A sensitive unit is named only to those who see its visits in full anyway.
            unit_named=self.other_level == ViewLevel.FULL
            or provider_id not in self.sensitive_units,
        )

    def level_for(self, provider_id: int, provider_kind: str = "") -> ViewLevel:
        """The level of :meth:`sight_for` alone."""
        return self.sight_for(provider_id, provider_kind).level

    def shows_address_of(self, provider_id: int) -> bool:
        """Whether the place of that unit's visits (and its address) may be shown."""
        return self.sight_for(provider_id).place


class AccessDenied(DomainError):
    def __init__(self) -> None:
        super().__init__("access.denied", "you may not see this person's data")


# What each action is about: reading the calendar, a booking, the settings, the audit log,
# changing the settings, importing bookings, a caregiver's busy-time lookup.
READ_ACTIONS = {"calendar.read", "booking.read", "settings.read", "audit.read"}
WRITE_ACTIONS = {"settings.write", "calendar.import"}
BUSY_LOOKUP = "calendar.busy_lookup"


def authorize(
    session: Session,
    actor: Actor,
    person_id: int,
    action: str,
    *,
    now: datetime,
    detail: str = "",
) -> Access:
    """Allow or refuse ``action`` on the person's data; audit every read by someone else.

    The audit row is added to the session; the calling use case commits it.
    """
    person = session.get(Person, person_id)
    access = None
    if person is not None and person.deleted_utc is None:
        access = _decide(session, actor, person, action, now)
    if access is None:
        raise AccessDenied()
    if actor.person_id != person_id and action not in WRITE_ACTIONS:
        audit(session, actor, person_id, action, now=now, detail=detail)
    return access


def may(session: Session, actor: Actor, person_id: int, action: str, *, now: datetime) -> bool:
    """Whether ``actor`` may do ``action`` on the person's data, without reading any of it
    (nothing is audited): for where a link may lead, never for showing data."""
    person = session.get(Person, person_id)
    if person is None or person.deleted_utc is not None:
        return False
    return _decide(session, actor, person, action, now) is not None


def audit(
    session: Session, actor: Actor, person_id: int, action: str, *, now: datetime, detail: str = ""
) -> None:
    """Record that ``actor`` looked at the person's data (no commit)."""
    session.add(
        AuditEvent(
            at_utc=now,
            person_id=person_id,
            actor_user_id=actor.user_id,
            actor_label=actor.label[:200],
            actor_role=actor.role.value if actor.role else "operator",
            actor_unit=actor.unit_name[:200],
            action=action,
            detail=detail[:500],
            remote_addr=actor.remote_addr[:64],
        )
    )


def active_grant(
    session: Session, person: Person, helper_user_id: int | None, *, now: datetime
) -> HelperGrant | None:
    """The helper's grant from the person, if accepted, not withdrawn and not expired
    (``valid_until`` is the last day, in the person's zone)."""
    if helper_user_id is None:
        return None
    today = now.astimezone(ZoneInfo(person.timezone)).date()
    return session.scalars(
        select(HelperGrant).where(
            HelperGrant.person_id == person.id,
            HelperGrant.helper_user_id == helper_user_id,
            HelperGrant.withdrawn_utc.is_(None),
            or_(HelperGrant.valid_until.is_(None), HelperGrant.valid_until >= today),
        )
    ).first()


def has_care_relationship(session: Session, person_id: int, provider_id: int) -> bool:
    """Whether the unit has an active care relationship with the person."""
    return (
        session.scalars(
            select(CareRelationship.id).where(
                CareRelationship.person_id == person_id,
                CareRelationship.provider_id == provider_id,
                CareRelationship.ended_utc.is_(None),
            )
        ).first()
        is not None
    )


def _decide(
    session: Session, actor: Actor, person: Person, action: str, now: datetime
) -> Access | None:
    if action not in READ_ACTIONS | WRITE_ACTIONS | {BUSY_LOOKUP}:
        return None
    protected = person.protected_identity
    if actor.role is None and actor.user_id is None:  # the operator at the command line
        return Access(person_id=person.id, other_level=ViewLevel.FULL, may_manage=True)
    if actor.role == Role.PERSON:
        if actor.person_id != person.id:
            return None
        return Access(
            person_id=person.id, other_level=ViewLevel.FULL, may_manage=True, sees_personal=True
        )
    if actor.role == Role.HELPER:
        return _helper_access(session, actor, person, action, now)
    if actor.role == Role.CAREGIVER and actor.provider_id is not None:
        if action == BUSY_LOOKUP:
            # A first booking without a care relationship: busy time only, audited.
            return Access(
                person_id=person.id, other_level=ViewLevel.BUSY, hide_other_addresses=True
            )
        if action not in ("calendar.read", "booking.read", "calendar.import"):
            return None
        if not has_care_relationship(session, person.id, actor.provider_id):
            return None
        consent = session.scalars(
            select(UnitConsent).where(
                UnitConsent.person_id == person.id, UnitConsent.provider_id == actor.provider_id
            )
        ).first()
        return Access(
            person_id=person.id,
            other_level=consent.others_level if consent else ViewLevel.BUSY,
            own_provider_id=actor.provider_id,
            hide_other_addresses=protected,
            sensitive_units=sensitive_units(session, person.id),
        )
    return None  # administrators register units and accounts; they do not read calendars


def _helper_access(
    session: Session, actor: Actor, person: Person, action: str, now: datetime
) -> Access | None:
    grant = active_grant(session, person, actor.user_id, now=now)
    if grant is None:
        return None
    grants = frozenset(
        name
        for name, on in (
            ("view", grant.view_level is not None),
            ("reminders", grant.receives_reminders),
            ("settings", grant.manages_settings),
        )
        if on
    )
    if action in ("calendar.read", "booking.read") and grant.view_level is None:
        return None
    if action in ("settings.read", "settings.write") and not grant.manages_settings:
        return None
    if action in ("audit.read", "calendar.import", BUSY_LOOKUP):
        return None
    return Access(
        person_id=person.id,
        other_level=grant.view_level or ViewLevel.BUSY,
        may_manage=grant.manages_settings,
        grants=grants,
        sensitive_units=sensitive_units(session, person.id),
    )


def feed_access(session: Session, person: Person, level: ViewLevel, *, own: bool) -> Access:
    """What a calendar feed at ``level`` shows: the person's own feed (``own``) or a
    helper's. A feed is published beyond our site, so a protected person's feeds never hold
    an address, and sensitive units are named neutrally below the full level."""
    return Access(
        person_id=person.id,
        other_level=level,
        hide_other_addresses=person.protected_identity,
        sees_personal=own,
        sensitive_units=sensitive_units(session, person.id),
    )


def sensitive_units(session: Session, person_id: int) -> frozenset[int]:
    """The units the person marked sensitive: never named below the full level."""
    return frozenset(
        session.scalars(
            select(UnitConsent.provider_id).where(
                UnitConsent.person_id == person_id, UnitConsent.sensitive.is_(True)
            )
        )
    )


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    protected_identity: bool


def visible_people(session: Session, actor: Actor, *, now: datetime) -> list[PersonRef]:
    """The people whose calendars ``actor`` may open (for helpers and caregivers)."""
    if actor.role == Role.HELPER:
        today = now.date()  # listing only; each open is checked in the person's own zone
        query = (
            select(Person)
            .join(HelperGrant, HelperGrant.person_id == Person.id)
            .where(
                HelperGrant.helper_user_id == actor.user_id,
                HelperGrant.withdrawn_utc.is_(None),
                or_(HelperGrant.valid_until.is_(None), HelperGrant.valid_until >= today),
                or_(HelperGrant.view_level.is_not(None), HelperGrant.manages_settings),
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
