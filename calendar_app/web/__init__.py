"""Web wiring: request-scoped database session, the signed-in user, headers, blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from calendar_app.db import now_utc
from calendar_app.services import accounts
from calendar_app.web import errors, formatting

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
LOCALES = ("sv", "en")


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        from flask import current_app

        g.db = current_app.extensions["session_factory"]()
    return g.db


def select_locale() -> str:
    """Swedish unless the visitor chose English."""
    chosen = session.get("lang")
    return chosen if chosen in LOCALES else "sv"


def init_app(app: Flask) -> None:
    """Register extensions, hooks and blueprints on ``app``."""
    Babel(app, locale_selector=select_locale)
    csrf = CSRFProtect(app)
    formatting.init_app(app)

    @app.before_request
    def _load_user() -> None:
        g.user = None
        token = session.get("sid")
        if token:
            g.user = accounts.user_for_token(db(), token, now=now_utc())
            if g.user is None:
                session.pop("sid", None)

    @app.teardown_appcontext
    def _close_db(_exc: BaseException | None) -> None:
        database = g.pop("db", None)
        if database is not None:
            database.close()

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.path != "/healthz" and not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    errors.init_app(app)

    from calendar_app.web import api, auth, booking, health, person, settings

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(person.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(booking.bp)
    csrf.exempt(api.bp)  # JSON only; see api._json_body
    app.register_blueprint(api.bp)
