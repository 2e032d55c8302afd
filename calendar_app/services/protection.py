"""Protected identity (skyddade personuppgifter): set and ended with the decision behind it.

An administrator records it (page or command line) with the decision's reference, e.g.
Skatteverket's; where the county's identity broker sends a claim for it, a person's sign-in
keeps it in step. Either way the change is written to the person's audit log and takes
effect at once on every surface: the calendar version moves, so feeds are rendered again
without addresses, and pages, SMS and clash explanations read the flag at each request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import Person, Role
from calendar_app.services.access import Actor, audit
from calendar_app.services.locking import begin_person_write, calendar_changed

# What the audit log says: the person reads it as "Vem har sett min kalender?".
ACTION_ON = "person.protected_identity_on"
ACTION_OFF = "person.protected_identity_off"
BROKER = "identity broker"


def set_protected_identity(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    protected: bool,
    reference: str,
    now: datetime,
) -> Person:
    """Mark the person as protected (or end it), with the decision's reference; one
    transaction, audited. Only an administrator or the operator at the command line."""
    if actor.role not in (Role.ADMIN, None) or (actor.role is None and actor.user_id is not None):
        raise DomainError("access.denied", "only an administrator records protected identity")
    reference = " ".join(reference.split())[:200]
    if not reference:
        raise DomainError(
            "protection.reference_missing", "give the reference of the decision behind it"
        )
    return _change(session, actor, person_id, protected=protected, reference=reference, now=now)


def follow_broker_claim(
    session: Session, person_id: int, claim: object, *, actor: Actor, now: datetime
) -> None:
    """Keep the flag in step with the identity broker's claim at sign-in, where it sends
    one (true/false, or "1"/"0"); no claim changes nothing. Commits only a change."""
    if isinstance(claim, str):
        claim = {"true": True, "1": True, "false": False, "0": False}.get(claim.strip().lower())
    if not isinstance(claim, bool):
        return
    person = session.get(Person, person_id)
    if person is None or person.protected_identity == claim:
        return
    _change(session, actor, person_id, protected=claim, reference=BROKER, now=now)


def _change(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    protected: bool,
    reference: str,
    now: datetime,
) -> Person:
    person = begin_person_write(session, person_id)
    if person is None or person.deleted_utc is not None:
        session.rollback()
        raise DomainError("person.not_found", "no such person")
    person.protected_identity = protected
    person.protected_identity_reference = reference
    person.protected_identity_changed_utc = now
    person.protected_identity_changed_by = actor.label[:200]
    audit(
        session,
        actor,
        person_id,
        ACTION_ON if protected else ACTION_OFF,
        now=now,
        detail=reference,
    )
    calendar_changed(session, person_id)  # feeds are rendered again, without addresses
    session.commit()
    return person
