"""Accounts and server-side login sessions (so a session can be ended from the server)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import LoginFailure, Role, User, UserSession

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


@dataclass(frozen=True)
class LoginPolicy:
    """How long sessions last and how many failed sign-ins are tolerated."""

    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)
    max_failures_per_account: int = 5
    max_failures_per_address: int = 30
    throttle_window: timedelta = timedelta(minutes=15)


class LoginThrottled(DomainError):
    """Too many failed sign-ins for this account or from this address."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("login.throttled", "too many failed sign-ins; wait and try again")
        self.retry_after = retry_after


def _throttle(
    session: Session, username: str, remote_addr: str, *, now: datetime, policy: LoginPolicy
) -> None:
    since = now - policy.throttle_window
    for column, value, limit in (
        (LoginFailure.username, username, policy.max_failures_per_account),
        (LoginFailure.remote_addr, remote_addr, policy.max_failures_per_address),
    ):
        recent = session.scalars(
            select(LoginFailure.at_utc)
            .where(column == value, LoginFailure.at_utc > since)
            .order_by(LoginFailure.at_utc.desc())
            .limit(limit)
        ).all()
        if len(recent) >= limit:
            # Free again when the oldest of the last `limit` failures leaves the window.
            raise LoginThrottled(recent[-1] + policy.throttle_window - now)


def log_in(
    session: Session,
    username: str,
    password: str,
    *,
    now: datetime,
    remote_addr: str = "",
    policy: LoginPolicy | None = None,
) -> str:
    """Check the password and open a server-side session; return its secret token.

    Failures are counted per account name and per address, whether or not the account
    exists, so the throttle tells nothing about which accounts there are.
    """
    policy = policy or LoginPolicy()
    name = username.strip().lower()[:100]
    remote_addr = remote_addr[:64]
    try:
        _throttle(session, name, remote_addr, now=now, policy=policy)
    except LoginThrottled:
        session.rollback()
        raise
    user = session.scalars(select(User).where(User.username == name, User.active.is_(True))).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user = None
    if user is None:
        session.add(LoginFailure(at_utc=now, username=name, remote_addr=remote_addr))
        # Old failures count for nothing; dropping them keeps the table small.
        session.execute(delete(LoginFailure).where(LoginFailure.at_utc < now - timedelta(days=1)))
        session.commit()
        raise DomainError("login.failed", "wrong user name or password")
    session.execute(delete(LoginFailure).where(LoginFailure.username == name))
    return open_session(session, user, now=now, policy=policy, method="password")


def open_session(
    session: Session, user: User, *, now: datetime, policy: LoginPolicy, method: str
) -> str:
    """Open a server-side session for ``user`` and commit; return its secret token."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_utc=now,
            expires_utc=now + policy.lifetime,
            last_seen_utc=now,
            method=method,
        )
    )
    session.commit()
    return token


@dataclass(frozen=True)
class SessionCheck:
    """The user behind a session token, or why there is none (ended, expired, idle)."""

    user: User | None
    reason: str | None = None


# The idle clock is written at most this often, not on every request.
_SEEN_RESOLUTION = timedelta(minutes=1)


def check_session(
    session: Session, token: str, *, now: datetime, policy: LoginPolicy | None = None
) -> SessionCheck:
    """The session's user if it is live; ends a session that has been idle too long."""
    policy = policy or LoginPolicy()
    row = session.scalars(
        select(UserSession).where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return SessionCheck(None, "unknown")
    if row.ended_utc is not None:
        return SessionCheck(None, "ended")
    if row.expires_utc <= now:
        return SessionCheck(None, "expired")
    last_seen = row.last_seen_utc or row.created_utc
    if last_seen + policy.idle <= now:
        row.ended_utc = now
        session.commit()
        return SessionCheck(None, "idle")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return SessionCheck(None, "ended")
    if now - last_seen >= _SEEN_RESOLUTION:
        row.last_seen_utc = now
        session.commit()
    return SessionCheck(user)


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


def live_sessions(session: Session, user_id: int, *, now: datetime) -> list[UserSession]:
    """The user's sessions that have not ended or expired, newest first."""
    rows = list(
        session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.ended_utc.is_(None),
                UserSession.expires_utc > now,
            )
            .order_by(UserSession.created_utc.desc())
        )
    )
    session.commit()
    return rows


def set_staff_id(session: Session, username: str, staff_id: str) -> User:
    """Connect a staff account to its id in the identity broker and commit."""
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None or not user.active:
        raise DomainError("user.not_found", "no such account")
    if user.role not in (Role.CAREGIVER, Role.ADMIN):
        raise DomainError("user.not_staff", "only caregivers and administrators have a staff id")
    staff_id = staff_id.strip()
    if not staff_id or len(staff_id) > 64:
        raise DomainError("user.staff_id", "a staff id has 1 to 64 characters")
    taken = session.scalars(
        select(User.id).where(User.staff_id == staff_id, User.id != user.id)
    ).first()
    if taken is not None:
        raise DomainError("user.staff_id_taken", "another account has this staff id")
    user.staff_id = staff_id
    session.commit()
    return user
