"""Who an e-legitimation sign-in is: the person by personnummer, a caregiver by staff id.

The claims come from the county's identity broker (BankID, Freja eID, SITHS) through
OpenID Connect; the broker has checked the identity, this only maps it to an account.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain import personnummer
from calendar_app.domain.errors import DomainError
from calendar_app.models import Person, Role, User

# An account that signs in only through the broker has no usable password.
NO_PASSWORD = "!"  # noqa: S105 - not a password: a value argon2 can never verify


@dataclass(frozen=True)
class ClaimNames:
    """Which claims carry the personnummer and the staff id (they differ per broker)."""

    personnummer: str
    staff_id: str


def account_for_claims(
    session: Session, claims: Mapping[str, Any], names: ClaimNames, *, now: datetime
) -> User:
    """The account to sign in, made for a registered person on their first sign-in.

    Raises ``login.unknown_person`` (no calendar for this personnummer),
    ``login.unknown_staff`` (no active account with this staff id) or
    ``login.no_identity`` (the broker sent neither claim). Commits only a new account.
    """
    pnr_claim = claims.get(names.personnummer)
    if isinstance(pnr_claim, str) and pnr_claim.strip():
        try:
            pnr = personnummer.parse(pnr_claim, today=now.date())
        except DomainError:
            raise DomainError(
                "login.no_identity", "the identity broker sent no valid personnummer"
            ) from None
        return _person_account(session, pnr, now=now)
    staff_claim = claims.get(names.staff_id)
    if isinstance(staff_claim, str) and staff_claim.strip():
        user = session.scalars(
            select(User).where(User.staff_id == staff_claim.strip(), User.active.is_(True))
        ).first()
        if user is None:
            raise DomainError("login.unknown_staff", "no account has this staff id")
        return user
    raise DomainError("login.no_identity", "the identity broker sent no personnummer or staff id")


def _person_account(session: Session, pnr: str, *, now: datetime) -> User:
    person = session.scalars(select(Person).where(Person.personnummer == pnr)).first()
    if person is None or person.deleted_utc is not None:
        raise DomainError("login.unknown_person", "there is no calendar for this person")
    user = session.scalars(
        select(User).where(
            User.person_id == person.id, User.role == Role.PERSON, User.active.is_(True)
        )
    ).first()
    if user is not None:
        return user
    # The user name is made from the row id: a personnummer never becomes a user name.
    username = f"person-{person.id}"
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        username = f"{username}-{secrets.token_hex(3)}"
    user = User(
        username=username,
        display_name=person.name,
        password_hash=NO_PASSWORD,
        role=Role.PERSON,
        person_id=person.id,
    )
    session.add(user)
    session.commit()
    return user
