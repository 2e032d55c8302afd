"""Accounts and server-side login sessions (so a session can be ended from the server)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import Role, User, UserSession

_hasher = PasswordHasher()
# Verifying against this keeps the time of a failed login the same whether or not the
# account exists.
_DUMMY_HASH = _hasher.hash("no such account")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    if len(password) < 8:
        raise DomainError("password.too_short", "the password must have at least 8 characters")
    return _hasher.hash(password)


def add_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    person_id: int | None = None,
    provider_id: int | None = None,
) -> User:
    """Create an account (no commit): a person account needs a person, a caregiver a unit."""
    if role == Role.PERSON and person_id is None:
        raise DomainError("user.person_missing", "a person account belongs to a person")
    if role == Role.CAREGIVER and provider_id is None:
        raise DomainError("user.unit_missing", "a caregiver belongs to one unit")
    user = User(
        username=username.strip().lower(),
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        person_id=person_id,
        provider_id=provider_id,
    )
    session.add(user)
    session.flush()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(
    session: Session, username: str, password: str, *, now: datetime, lifetime: timedelta
) -> str:
    """Check the password and open a server-side session; return its secret token."""
    user = session.scalars(
        select(User).where(User.username == username.strip().lower(), User.active.is_(True))
    ).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user = None
    if user is None:
        raise DomainError("login.failed", "wrong user name or password")
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_utc=now,
            expires_utc=now + lifetime,
        )
    )
    session.commit()
    return token


def user_for_token(session: Session, token: str, *, now: datetime) -> User | None:
    """The user of a live session, or None if it ended, expired or never existed."""
    row = session.scalars(
        select(UserSession).where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is None or row.ended_utc is not None or row.expires_utc <= now:
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def log_out(session: Session, token: str, *, now: datetime) -> None:
    """End one session."""
    session.execute(
        update(UserSession)
        .where(UserSession.token_hash == _token_hash(token), UserSession.ended_utc.is_(None))
        .values(ended_utc=now)
    )
    session.commit()


def end_all_sessions(session: Session, user_id: int, *, now: datetime) -> int:
    """End every open session of a user (e.g. when access is withdrawn); return how many."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_utc.is_(None))
        .values(ended_utc=now)
    )
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
