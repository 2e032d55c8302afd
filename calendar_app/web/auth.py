"""Signing in and out, the current actor, and the language choice.

Two ways in: a password (the embedded default) and OpenID Connect through the county's
identity broker (BankID, Freja eID, SITHS), switched on by ``CALENDAR_APP_OIDC_ISSUER``.
Both end in the same server-side session.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import unquote

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from calendar_app.domain.errors import DomainError
from calendar_app.domain.photos import PhotoError
from calendar_app.models import Role
from calendar_app.services import accounts, identity, photos, protection
from calendar_app.services.access import Actor
from calendar_app.web import LOCALES, db, now_utc
from calendar_app.web.messages import error_text

bp = Blueprint("auth", __name__)


def policy() -> accounts.LoginPolicy:
    """The session and throttling limits from the configuration."""
    config = current_app.config
    return accounts.LoginPolicy(
        lifetime=timedelta(hours=config["SESSION_LIFETIME_HOURS"]),
        idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        max_failures_per_account=config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
        max_failures_per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        max_failures_per_device=config["LOGIN_MAX_FAILURES_PER_DEVICE"],
        throttle_window=timedelta(minutes=config["LOGIN_THROTTLE_MINUTES"]),
        device_lifetime=timedelta(days=config["LOGIN_DEVICE_COOKIE_DAYS"]),
    )


def init_oidc(app: Flask) -> None:
    """Register the identity broker as an OpenID Connect client, if one is configured."""
    issuer = app.config["OIDC_ISSUER"]
    if not issuer:
        return
    oauth = OAuth(app)
    app.extensions["oidc_client"] = oauth.register(
        name="broker",
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"] or None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": app.config["OIDC_SCOPE"],
            "default_timeout": app.config["OIDC_TIMEOUT_SECONDS"],
        },
    )


def current_actor() -> Actor:
    """Whoever makes this request: the signed-in user, or a provider system's API token."""
    token = g.get("api_token")
    if token is not None:
        return Actor(
            user_id=None,
            role=Role.CAREGIVER,
            label=f"API-nyckel {token.name}",
            provider_id=token.provider_id,
            unit_name=token.provider.name,
            remote_addr=request.remote_addr or "",
            scopes=frozenset(token.scopes.split()),
        )
    user = g.user
    return Actor(
        user_id=user.id,
        role=user.role,
        label=user.display_name,
        person_id=user.person_id,
        provider_id=user.provider_id,
        unit_name=user.provider.name if user.provider is not None else "",
        remote_addr=request.remote_addr or "",
    )


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send anonymous visitors to the login page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapped


# What a browser would drop from a URL or read differently (WHATWG URL parsing strips C0
# controls and spaces at the ends and tabs and newlines anywhere, and reads "\" as "/"):
# "/<tab>/evil.example" and "/\evil.example" are "//evil.example", another site.
_REREAD = re.compile(r"[\x00-\x1f\x7f\\]")


def _is_own_path(url: str) -> bool:
    """Whether ``url`` is a path on this site exactly as a browser reads it."""
    return url.startswith("/") and not url.startswith("//") and not _REREAD.search(url)


def _local_target(target: str | None) -> str:
    """Where to go after signing in or switching language: a path on this site, else home.

    Checked as written and once percent-decoded, so that a layer that decodes again (a
    proxy, a second redirect) cannot turn it into another site either.
    """
    if target and _is_own_path(target) and _is_own_path(unquote(target)):
        return target
    return url_for("person.home")


def _device_cookie_name() -> str:
    # Behind https the __Host- prefix binds the cookie to this exact host, as for the session.
    return "__Host-device" if current_app.config["SESSION_COOKIE_SECURE"] else "device"


def _start_session(user_token: str, target: str) -> ResponseReturnValue:
    lang = session.get("lang")
    session.clear()  # a new session id for the new login (no session fixation)
    if lang:
        session["lang"] = lang
    session["sid"] = user_token
    session.permanent = True
    return redirect(_local_target(target))


def _login_page(status: int = 200) -> ResponseReturnValue:
    return (
        render_template(
            "auth/login.html",
            password_login=current_app.config["PASSWORD_LOGIN"],
            oidc=current_app.extensions.get("oidc_client") is not None,
            next=request.args.get("next", ""),
        ),
        status,
    )


def _throttled_message(retry_after: timedelta) -> str:
    minutes = max(1, math.ceil(retry_after.total_seconds() / 60))
    return ngettext(
        "Too many failed attempts. Wait %(num)d minute and try again.",
        "Too many failed attempts. Wait %(num)d minutes and try again.",
        minutes,
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; a failed attempt says so without telling which part was wrong."""
    if request.method == "GET":
        return _login_page()
    if not current_app.config["PASSWORD_LOGIN"]:
        abort(404)
    username = request.form.get("username", "")
    secret, limits, now = current_app.config["SECRET_KEY"], policy(), now_utc()
    cookie = request.cookies.get(_device_cookie_name(), "")
    try:
        token = accounts.log_in(
            db(),
            username,
            request.form.get("password", ""),
            now=now,
            remote_addr=request.remote_addr or "",
            policy=limits,
            device=accounts.device_for(secret, cookie, username, now=now, policy=limits),
        )
    except accounts.LoginThrottled as exc:
        flash(_throttled_message(exc.retry_after), "error")
        response = current_app.make_response(_login_page(429))
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after.total_seconds()))
        return response
    except DomainError:
        flash(_("Wrong user name or password."), "error")
        return _login_page(401)
    response = current_app.make_response(_start_session(token, request.args.get("next", "")))
    # A new cookie on every sign-in: a count of failures of its own, and a new lifetime.
    response.set_cookie(
        _device_cookie_name(),
        accounts.device_cookie(secret, username, now=now),
        max_age=int(limits.device_lifetime.total_seconds()),
        path="/",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Strict",
    )
    return response


OIDC_MESSAGES = {
    "login.unknown_person": _l(
        "There is no calendar for you here yet. Ask your clinic to add you."
    ),
    "login.unknown_staff": _l("Your e-identification is not connected to an account here."),
    "login.no_identity": _l("The sign-in did not say who you are. Try again."),
}


def _callback_url() -> str:
    # Behind a proxy the request's own host may not be the one the broker knows.
    base = current_app.config["PUBLIC_BASE_URL"]
    path = url_for("auth.oidc_callback")
    return f"{base}{path}" if base else url_for("auth.oidc_callback", _external=True)


@bp.post("/login/e-legitimation")
def oidc_start() -> ResponseReturnValue:
    """Send the visitor to the county's identity broker (BankID, Freja eID, SITHS)."""
    client = current_app.extensions.get("oidc_client")
    if client is None:
        abort(404)
    session["login_next"] = _local_target(request.form.get("next"))
    try:
        return client.authorize_redirect(_callback_url())
    except (requests.RequestException, AuthlibBaseError, ValueError):
        current_app.logger.warning("identity broker unreachable when starting a sign-in")
        flash(_("The e-identification service is not answering. Try again in a while."), "error")
        return _login_page(503)


@bp.get("/login/e-legitimation/callback")
def oidc_callback() -> ResponseReturnValue:
    """Come back from the broker: check the answer, find the account, open a session."""
    client = current_app.extensions.get("oidc_client")
    if client is None:
        abort(404)
    try:
        answer = client.authorize_access_token()
        claims = dict(answer.get("userinfo") or {})
        names = identity.ClaimNames(
            personnummer=current_app.config["OIDC_PERSONNUMMER_CLAIM"],
            staff_id=current_app.config["OIDC_STAFF_ID_CLAIM"],
        )
        if names.personnummer not in claims and names.staff_id not in claims:
            claims.update(client.userinfo(token=answer))
    except (requests.RequestException, AuthlibBaseError, ValueError, KeyError) as exc:
        # The claims may hold a personnummer: log the kind of failure only.
        current_app.logger.warning("sign-in through the identity broker failed: %s", type(exc))
        flash(_("The sign-in was not completed. Try again."), "error")
        return _login_page(401)
    try:
        user = identity.account_for_claims(db(), claims, names, now=now_utc())
    except DomainError as exc:
        db().rollback()
        flash(str(OIDC_MESSAGES.get(exc.code, OIDC_MESSAGES["login.no_identity"])), "error")
        return _login_page(403)
    protection_claim = current_app.config["OIDC_PROTECTED_IDENTITY_CLAIM"]
    if protection_claim and user.person_id is not None:
        # The broker's word on protected identity, where it sends one, keeps ours in step.
        protection.follow_broker_claim(
            db(),
            user.person_id,
            claims.get(protection_claim),
            actor=Actor(user_id=None, role=None, label=protection.BROKER, person_id=user.person_id),
            now=now_utc(),
        )
    token = accounts.open_session(db(), user, now=now_utc(), policy=policy(), method="oidc")
    return _start_session(token, session.pop("login_next", ""))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this session on the server and in the browser."""
    token = session.pop("sid", None)
    if token:
        accounts.log_out(db(), token, now=now_utc())
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout/everywhere")
def logout_everywhere() -> ResponseReturnValue:
    """End every session of this account: other browsers, phones and this one."""
    session.pop("sid", None)
    if g.user is not None:
        count = accounts.end_all_sessions(db(), g.user.id, now=now_utc())
        flash(
            ngettext(
                "You are logged out everywhere (%(num)d session ended).",
                "You are logged out everywhere (%(num)d sessions ended).",
                count,
            ),
            "info",
        )
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> ResponseReturnValue:
    """The account page: where one is logged in, log out everywhere, the person's data."""
    config = current_app.config
    return render_template(
        "account/account.html",
        sessions=accounts.live_sessions(db(), g.user.id, now=now_utc()),
        idle_minutes=config["SESSION_IDLE_MINUTES"],
        lifetime_hours=config["SESSION_LIFETIME_HOURS"],
    )


@bp.post("/account/photo")
@login_required
def own_photo() -> ResponseReturnValue:
    """A caregiver's own photo, shown to the people with the visits they book."""
    require_role(Role.CAREGIVER)
    upload = request.files.get("photo")
    try:
        photos.set_own_photo(db(), g.user.id, upload.read() if upload else b"", now=now_utc())
    except PhotoError as exc:
        db().rollback()
        flash(error_text(exc.code, exc.message), "error")
        return redirect(url_for("auth.account"))
    flash(_("Your photo is saved. People see it with the visits you book."), "info")
    return redirect(url_for("auth.account"))


SESSION_ENDED = {
    "idle": _l(
        "You were logged out because you had not used the service for a while. Log in again."
    ),
    "expired": _l("Your login has expired. Log in again."),
    "ended": _l("You have been logged out. Log in again."),
}


def session_ended_message(reason: str | None) -> str | None:
    """What to tell someone whose session just ended without them asking."""
    text = SESSION_ENDED.get(reason or "")
    return str(text) if text else None


@bp.post("/language")
def language() -> ResponseReturnValue:
    """Switch between Swedish and English."""
    lang = request.form.get("lang", "sv")
    if lang not in LOCALES:
        abort(400)
    session["lang"] = lang
    return redirect(_local_target(request.form.get("next", "")))


@bp.post("/easy-read")
def easy_read() -> ResponseReturnValue:
    """Easy-to-read mode on or off: larger text and fewer details on every page."""
    session["easy"] = request.form.get("easy") == "on"
    return redirect(_local_target(request.form.get("next", "")))


def require_role(*roles: Role) -> None:
    """Abort with 403 unless the signed-in user has one of ``roles``."""
    if g.user is None or g.user.role not in roles:
        abort(403)
