"""API tokens for provider systems and scripts: one unit, named scopes, revocable.

A token is 256 random bits shown once; only its SHA-256 is stored (a fast hash is enough
for a secret that cannot be guessed, unlike a password). Every request looks the token up
again, so a revoked token is refused at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import ApiToken, Provider

# What a token may be allowed to do (a signed-in user's role decides instead):
# calendar:read - calendars of people in the unit's care, busy times, checks, suggestions;
# visits:write - book, rebook and cancel the unit's visits; units:write - opening hours;
# bookings:push - the unit's own system sends its bookings (create, update, cancel).
SCOPES = ("calendar:read", "visits:write", "units:write", "bookings:push")
PREFIX = "pk_"
# Last use is written at most this often, not on every request.
_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``secret`` is shown once and never stored."""

    id: int
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(values: list[str] | str) -> list[str]:
    """The scopes asked for, checked against :data:`SCOPES`, sorted and unique."""
    items = values.split() if isinstance(values, str) else values
    chosen = sorted({item.strip() for item in items if item.strip()})
    unknown = [item for item in chosen if item not in SCOPES]
    if unknown:
        raise DomainError(
            "token.scope_unknown",
            f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}",
        )
    if not chosen:
        raise DomainError("token.scope_missing", "choose at least one scope")
    return chosen


def create_token(
    session: Session,
    *,
    name: str,
    provider_id: int,
    scopes: list[str] | str,
    created_by: str,
    now: datetime,
) -> NewToken:
    """Make a token for one unit and commit; the returned secret is shown once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise DomainError("token.name", "give the token a name of 1 to 100 characters")
    chosen = parse_scopes(scopes)
    if session.get(Provider, provider_id) is None:
        raise DomainError("unit.not_found", "no such unit")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=_digest(secret),
        prefix=secret[:10],
        provider_id=provider_id,
        scopes=" ".join(chosen),
        created_utc=now,
        created_by=created_by[:200],
    )
    session.add(row)
    session.commit()
    return NewToken(id=row.id, secret=secret)


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, newest first, with its unit loaded."""
    rows = list(session.scalars(select(ApiToken).order_by(ApiToken.created_utc.desc())))
    for row in rows:
        _ = row.provider.name
    session.commit()
    return rows


def revoke_token(session: Session, token_id: int, *, now: datetime) -> ApiToken:
    """Revoke a token and commit; revoking twice changes nothing."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise DomainError("token.not_found", "no such token")
    if row.revoked_utc is None:
        row.revoked_utc = now
    session.commit()
    return row


def token_for_secret(
    session: Session, secret: str, *, now: datetime, remote_addr: str = ""
) -> ApiToken | None:
    """The live token with this secret, its last use recorded; None if unknown or revoked."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).first()
    if row is None or row.revoked_utc is not None:
        return None
    _ = row.provider.name
    if row.last_used_utc is None or now - row.last_used_utc >= _USE_RESOLUTION:
        row.last_used_utc = now
        row.last_used_addr = remote_addr[:64]
        session.commit()
    return row
