"""Accounts and server-side login sessions (so a session can be ended from the server)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session
from zxcvbn_rs_py import zxcvbn

from calendar_app.domain.errors import DomainError
from calendar_app.models import LoginFailure, Role, User, UserSession

_hasher = PasswordHasher()
# Verifying against this keeps the time of a failed login the same whether or not the
# account exists.
_DUMMY_HASH = _hasher.hash("no such account")


PASSWORD_MIN_LENGTH = 10
# zxcvbn's own line between "somewhat guessable" (score 2) and "safely unguessable" (3).
_MIN_GUESSES_LOG10 = 8
# Only the start is scored: the estimate's cost grows with the length, and a long password
# whose first 100 characters are strong is strong.
_SCORED_LENGTH = 100
# Words Swedish passwords are made of, which zxcvbn's English lists do not know: with
# them, "sommar2026" and "Lösenord2026" score as the guesses they are.
_SWEDISH_WORDS = (
    "lösenord losenord hemligt hemlig sommar vinter våren varen hösten hosten jul påsk "
    "midsommar januari februari mars april maj juni juli augusti september oktober "
    "november december måndag tisdag onsdag torsdag fredag lördag söndag sverige svensk "
    "stockholm göteborg malmö uppsala växjö vaxjo kronoberg region kommun kalender "
    "personkalendern välkommen valkommen hejsan hej älskar alskar mamma pappa katten "
    "hunden fotboll hockey qwertyuiopå asdfghjklöä"
)


def check_password(password: str, *, context: Iterable[str] = ()) -> None:
    """Refuse a password that is short or easy to guess (``context``: the account's names).

    The estimate is zxcvbn's (common passwords, names, words, keyboard patterns, dates,
    repeats and l33t spellings), fed with Swedish words and the account's own names.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        raise DomainError(
            "password.too_short",
            f"the password must have at least {PASSWORD_MIN_LENGTH} characters",
        )
    words = [*_SWEDISH_WORDS.split(), *(word for text in context for word in text.split())]
    if zxcvbn(password[:_SCORED_LENGTH], words).guesses_log10 < _MIN_GUESSES_LOG10:
        raise DomainError(
            "password.weak",
            "the password is too easy to guess: use a few words that go together only for you",
        )


def hash_password(password: str, *, context: Iterable[str] = ()) -> str:
    """An argon2id hash of ``password``, once :func:`check_password` has accepted it.

    Every password set here goes through the check, the demo's too: its passwords
    (``demo-alva-2026`` and so on) pass it, and tests/unit/test_passwords.py keeps it so.
    """
    check_password(password, context=context)
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
        password_hash=hash_password(password, context=(username, display_name)),
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
    max_failures_per_device: int = 5
    throttle_window: timedelta = timedelta(minutes=15)
    device_lifetime: timedelta = timedelta(days=180)


class LoginThrottled(DomainError):
    """Too many failed sign-ins for this account, from this address or on this device."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("login.throttled", "too many failed sign-ins; wait and try again")
        self.retry_after = retry_after


def account_name(username: str) -> str:
    """The account name as typed, in the form sign-ins are counted and stored under."""
    return username.strip().lower()[:100]


# --- device cookies -------------------------------------------------------------------------
# OWASP's "device cookies": a browser that has signed in to an account gets a signed cookie
# naming it. Attempts on that account that carry the cookie are counted per device, apart
# from everyone else's, so a stranger's wrong guesses never lock the person out of her own
# browser, and neither does the address's limit, which stops one address trying many
# accounts (a cookie is good for one). The stranger still meets both limits.

_DEVICE_SALT = "calendar_app.accounts.device-cookie"


def device_cookie(secret: str, username: str, *, now: datetime) -> str:
    """A new signed device cookie for a browser that just signed in as ``username``."""
    payload = {
        "u": _named(username),
        "d": secrets.token_urlsafe(16),
        "t": int(now.timestamp()),
    }
    return URLSafeSerializer(secret, salt=_DEVICE_SALT).dumps(payload)


def _named(username: str) -> str:
    # The cookie is signed, not sealed: it names the account by a hash, since a helper's
    # user name may be her e-mail address.
    return hashlib.sha256(account_name(username).encode()).hexdigest()[:32]


def device_for(
    secret: str, cookie: str, username: str, *, now: datetime, policy: LoginPolicy
) -> str | None:
    """The device a cookie proves for an attempt on ``username``; None for a missing,
    forged or expired cookie, or one another account's sign-in left."""
    if not cookie:
        return None
    try:
        payload: Any = URLSafeSerializer(secret, salt=_DEVICE_SALT).loads(cookie)
    except BadData:
        return None
    if not isinstance(payload, dict) or payload.get("u") != _named(username):
        return None
    issued, device = payload.get("t"), payload.get("d")
    if not isinstance(issued, int) or not isinstance(device, str) or not device:
        return None
    age = now.timestamp() - issued
    if not 0 <= age < policy.device_lifetime.total_seconds():
        return None
    # Stored in place of an account name; a typed name holding 32 hex digits of a secret
    # nonce's hash cannot be guessed, so nobody's failures land in a device's count.
    return "device:" + hashlib.sha256(device.encode()).hexdigest()[:32]


def _throttle(
    session: Session,
    budgets: list[tuple[ColumnElement[bool], int]],
    *,
    now: datetime,
    policy: LoginPolicy,
) -> None:
    since = now - policy.throttle_window
    for counted, limit in budgets:
        recent = session.scalars(
            select(LoginFailure.at_utc)
            .where(counted, LoginFailure.at_utc > since)
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
    device: str | None = None,
) -> str:
    """Check the password and open a server-side session; return its secret token.

    Failures are counted per account name and per address, whether or not the account
    exists, so the throttle tells nothing about which accounts there are. An attempt from a
    ``device`` that signed in to this account before (see :func:`device_for`) is counted
    per device instead, so that others' failures do not keep the person out.
    """
    policy = policy or LoginPolicy()
    name = account_name(username)
    remote_addr = remote_addr[:64]
    counted_as = device or name
    budgets = (
        [(LoginFailure.username == device, policy.max_failures_per_device)]
        if device
        else [
            (LoginFailure.username == name, policy.max_failures_per_account),
            (LoginFailure.remote_addr == remote_addr, policy.max_failures_per_address),
        ]
    )
    try:
        _throttle(session, budgets, now=now, policy=policy)
    except LoginThrottled:
        session.rollback()
        raise
    user = session.scalars(select(User).where(User.username == name, User.active.is_(True))).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user = None
    if user is None:
        session.add(LoginFailure(at_utc=now, username=counted_as, remote_addr=remote_addr))
        # Old failures count for nothing; dropping them keeps the table small.
        session.execute(delete(LoginFailure).where(LoginFailure.at_utc < now - timedelta(days=1)))
        session.commit()
        raise DomainError("login.failed", "wrong user name or password")
    session.execute(delete(LoginFailure).where(LoginFailure.username == counted_as))
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
