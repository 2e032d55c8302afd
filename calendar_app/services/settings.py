"""The person's own choices: consent per unit, care relationships, helpers.

The person (or a helper allowed to manage settings) changes them; each change is one
transaction and takes effect at the next request everywhere, since every read checks it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain import phone
from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    Booking,
    CareRelationship,
    HelperBasis,
    HelperGrant,
    Person,
    Provider,
    ProviderKind,
    Role,
    UnitConsent,
    User,
    ViewLevel,
)
from calendar_app.services.access import Access, Actor, authorize
from calendar_app.services.accounts import add_user
from calendar_app.services.directory import ensure_care_relationship
from calendar_app.services.locking import calendar_changed
from calendar_app.services.reminders import replan

PERSON_BASES = (HelperBasis.RELATIVE, HelperBasis.OMBUDSMAN)
COURT_BASES = (HelperBasis.TRUSTEE, HelperBasis.ADMINISTRATOR)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UnitChoice:
    provider_id: int
    name: str
    kind: str
    others_level: ViewLevel
    sensitive: bool
    related: bool


@dataclass(frozen=True)
class Settings:
    person_id: int
    person_name: str
    protected_identity: bool
    access: Access
    units: list[UnitChoice]
    relationships: list[CareRelationship]
    helpers: list[HelperGrant]
    all_units: list[Provider]


def read_settings(session: Session, actor: Actor, person_id: int, *, now: datetime) -> Settings:
    """Everything on the settings page; audited when read by a helper."""
    access = authorize(session, actor, person_id, "settings.read", now=now)
    person = session.get(Person, person_id)
    assert person is not None
    relationships = list(
        session.scalars(
            select(CareRelationship)
            .where(CareRelationship.person_id == person_id)
            .order_by(CareRelationship.started_utc)
        )
    )
    related_ids = {r.provider_id for r in relationships if r.ended_utc is None}
    booked_ids = set(
        session.scalars(select(Booking.provider_id).where(Booking.person_id == person_id))
    )
    consents = {
        c.provider_id: c
        for c in session.scalars(select(UnitConsent).where(UnitConsent.person_id == person_id))
    }
    providers = session.scalars(
        select(Provider).where(Provider.id.in_(related_ids | booked_ids)).order_by(Provider.name)
    ).all()
    units = [
        UnitChoice(
            provider_id=p.id,
            name=p.name,
            kind=p.kind.value,
            others_level=consents[p.id].others_level if p.id in consents else ViewLevel.BUSY,
            sensitive=consents[p.id].sensitive if p.id in consents else False,
            related=p.id in related_ids,
        )
        for p in providers
        if p.kind != ProviderKind.PERSONAL
    ]
    helpers = list(
        session.scalars(
            select(HelperGrant)
            .where(HelperGrant.person_id == person_id)
            .order_by(HelperGrant.granted_utc)
        )
    )
    all_units = session.scalars(
        select(Provider).where(Provider.kind != ProviderKind.PERSONAL).order_by(Provider.name)
    ).all()
    session.commit()
    return Settings(
        person_id=person.id,
        person_name=person.name,
        protected_identity=person.protected_identity,
        access=access,
        units=units,
        relationships=relationships,
        helpers=helpers,
        all_units=list(all_units),
    )


def _level(text: str) -> ViewLevel:
    try:
        return ViewLevel(text)
    except ValueError:
        raise DomainError("consent.level", "choose full, time_place or busy") from None


def set_unit_consent(
    session: Session,
    actor: Actor,
    person_id: int,
    provider_id: int,
    *,
    others_level: str,
    sensitive: bool,
    now: datetime,
) -> UnitConsent:
    """What the unit's caregivers see of other units, and whether the unit is sensitive."""
    authorize(session, actor, person_id, "settings.write", now=now)
    level = _level(others_level)
    if session.get(Provider, provider_id) is None:
        raise DomainError("provider.not_found", "no such unit")
    consent = session.scalars(
        select(UnitConsent).where(
            UnitConsent.person_id == person_id, UnitConsent.provider_id == provider_id
        )
    ).first()
    if consent is None:
        consent = UnitConsent(person_id=person_id, provider_id=provider_id)
        session.add(consent)
    consent.others_level = level
    consent.sensitive = sensitive
    consent.changed_utc = now
    calendar_changed(session, person_id)  # a limited feed names a sensitive unit neutrally
    session.commit()
    return consent


def start_care_relationship(
    session: Session, actor: Actor, person_id: int, provider_id: int, *, now: datetime
) -> None:
    """The person (or an administrator) opens a unit's care relationship."""
    if actor.role == Role.ADMIN:
        created_by = "administrator"
        if session.get(Person, person_id) is None:
            raise DomainError("person.not_found", "no such person")
    else:
        authorize(session, actor, person_id, "settings.write", now=now)
        created_by = "person" if actor.role == Role.PERSON else "helper"
    provider = session.get(Provider, provider_id)
    if provider is None or provider.kind == ProviderKind.PERSONAL:
        raise DomainError("provider.not_found", "no such unit")
    ensure_care_relationship(session, person_id, provider, created_by=created_by, now=now)
    session.commit()


def end_care_relationship(
    session: Session, actor: Actor, person_id: int, relationship_id: int, *, now: datetime
) -> None:
    """End a care relationship: the unit's caregivers lose access at once."""
    authorize(session, actor, person_id, "settings.write", now=now)
    relationship = session.get(CareRelationship, relationship_id)
    if relationship is None or relationship.person_id != person_id:
        raise DomainError("relationship.not_found", "no such care relationship")
    if relationship.ended_utc is None:
        relationship.ended_utc = now
        relationship.ended_by = "person" if actor.role == Role.PERSON else "helper"
    session.commit()


@dataclass(frozen=True)
class Invitation:
    grant_id: int
    code: str  # shown once; only its hash is stored


def _contact(text: str) -> str:
    text = text.strip()
    if _EMAIL.match(text):
        return text.lower()
    try:
        return phone.to_e164(text)
    except DomainError:
        raise DomainError(
            "helper.contact", "give the helper's mobile number or e-mail address"
        ) from None


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def invite_helper(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    name: str,
    contact: str,
    view_level: str | None,
    receives_reminders: bool,
    manages_settings: bool,
    valid_until: date | None,
    basis: str,
    now: datetime,
    decision_reference: str | None = None,
) -> Invitation:
    """Grant a helper rights; they accept with the returned code and their own account.

    The person may grant as närstående or personligt ombud; a god man or förvaltare is
    appointed by a court and registered by an administrator with the decision's reference.
    """
    try:
        helper_basis = HelperBasis(basis)
    except ValueError:
        raise DomainError("helper.basis", "unknown basis for the helper") from None
    if actor.role == Role.ADMIN:
        if helper_basis not in COURT_BASES:
            raise DomainError("helper.basis", "administrators register court appointments only")
        if not (decision_reference or "").strip():
            raise DomainError("helper.decision", "give the court decision's reference")
        if session.get(Person, person_id) is None:
            raise DomainError("person.not_found", "no such person")
        granted_by = "administrator"
    else:
        authorize(session, actor, person_id, "settings.write", now=now)
        if helper_basis not in PERSON_BASES:
            raise DomainError(
                "helper.basis", "a court appointment is registered by an administrator"
            )
        granted_by = "person" if actor.role == Role.PERSON else "helper"
    if not name.strip():
        raise DomainError("helper.name", "give the helper's name")
    level = _level(view_level) if view_level else None
    if level is None and not receives_reminders and not manages_settings:
        raise DomainError("helper.no_rights", "choose at least one thing the helper may do")
    if valid_until is not None and valid_until < now.date():
        raise DomainError("helper.until", "the end date has already passed")
    code = "-".join(secrets.token_hex(3).upper() for _ in range(4))  # 96 random bits
    grant = HelperGrant(
        person_id=person_id,
        helper_name=name.strip()[:200],
        contact=_contact(contact),
        invitation_hash=_code_hash(code),
        view_level=level,
        receives_reminders=receives_reminders,
        manages_settings=manages_settings,
        basis=helper_basis,
        decision_reference=(decision_reference or "").strip()[:100] or None,
        valid_until=valid_until,
        granted_utc=now,
        granted_by=granted_by,
    )
    session.add(grant)
    session.commit()
    return Invitation(grant_id=grant.id, code=code)


def accept_invitation(
    session: Session,
    *,
    code: str,
    username: str,
    display_name: str,
    password: str,
    now: datetime,
    existing_user: User | None = None,
) -> HelperGrant:
    """Link an invitation to the helper's account (a new one, or the signed-in helper's)."""
    grant = session.scalars(
        select(HelperGrant).where(HelperGrant.invitation_hash == _code_hash(code))
    ).first()
    if grant is None or grant.withdrawn_utc is not None or grant.helper_user_id is not None:
        raise DomainError("invitation.invalid", "the invitation code is not valid")
    if existing_user is not None:
        if existing_user.role != Role.HELPER:
            raise DomainError("invitation.role", "sign in with a helper account")
        user = existing_user
    else:
        if (
            not username.strip()
            or session.scalars(
                select(User.id).where(User.username == username.strip().lower())
            ).first()
        ):
            raise DomainError("invitation.username", "choose another user name")
        user = add_user(
            session,
            username=username,
            display_name=display_name.strip() or grant.helper_name,
            password=password,
            role=Role.HELPER,
        )
    grant.helper_user_id = user.id
    grant.invitation_hash = None  # used once
    if grant.receives_reminders:
        replan(session, grant.person_id, now=now)
    session.commit()
    return grant


def withdraw_helper(
    session: Session, actor: Actor, person_id: int, grant_id: int, *, now: datetime
) -> None:
    """Withdraw a helper's rights; every page, feed and reminder checks this at once."""
    authorize(session, actor, person_id, "settings.write", now=now)
    grant = session.get(HelperGrant, grant_id)
    if grant is None or grant.person_id != person_id:
        raise DomainError("helper.not_found", "no such helper")
    if grant.basis in COURT_BASES:
        raise DomainError(
            "helper.court", "a court appointment ends by a new decision, not from here"
        )
    if grant.withdrawn_utc is None:
        grant.withdrawn_utc = now
        grant.invitation_hash = None
        replan(session, person_id, now=now)  # her planned reminders are withdrawn
    session.commit()
