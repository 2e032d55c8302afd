"""Signing in and out, the current actor, and the language choice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
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

from calendar_app.db import now_utc
from calendar_app.domain.errors import DomainError
from calendar_app.models import Role
from calendar_app.services import accounts
from calendar_app.services.access import Actor
from calendar_app.web import LOCALES, db

bp = Blueprint("auth", __name__)


def current_actor() -> Actor:
    """The signed-in user as an :class:`Actor` (call only behind :func:`login_required`)."""
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


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; a failed attempt says so without telling which part was wrong."""
    if request.method == "POST":
        lifetime = timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])
        try:
            token = accounts.log_in(
                db(),
                request.form.get("username", ""),
                request.form.get("password", ""),
                now=now_utc(),
                lifetime=lifetime,
            )
        except DomainError:
            flash(_("Wrong user name or password."), "error")
            return render_template("auth/login.html"), 401
        lang = session.get("lang")
        session.clear()
        if lang:
            session["lang"] = lang
        session["sid"] = token
        target = request.args.get("next", "")
        # Only local paths: never redirect to another site after login.
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("person.home")
        return redirect(target)
    return render_template("auth/login.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this session on the server and in the browser."""
    token = session.pop("sid", None)
    if token:
        accounts.log_out(db(), token, now=now_utc())
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> ResponseReturnValue:
    """Switch between Swedish and English."""
    lang = request.form.get("lang", "sv")
    if lang not in LOCALES:
        abort(400)
    session["lang"] = lang
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("person.home")
    return redirect(target)


def require_role(*roles: Role) -> None:
    """Abort with 403 unless the signed-in user has one of ``roles``."""
    if g.user is None or g.user.role not in roles:
        abort(403)
