"""Web wiring: request-scoped database session, the signed-in user, headers, blueprints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import Flask, abort, current_app, flash, g, jsonify, request, session
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from calendar_app import logs
from calendar_app.metrics import RequestMetrics
from calendar_app.services import accounts, tokens
from calendar_app.web import errors, formatting

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
LOCALES = ("sv", "en")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def security_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headers every answer carries (pages and feeds alike): SECURITY_HEADERS, and
    Strict-Transport-Security when the public address is https (config.py makes it)."""
    headers = list(SECURITY_HEADERS.items())
    if config["STRICT_TRANSPORT_SECURITY"]:
        headers.append(("Strict-Transport-Security", config["STRICT_TRANSPORT_SECURITY"]))
    return headers


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["session_factory"]()
    return g.db


def now_utc() -> datetime:
    """The current instant by the app's one clock (see :mod:`calendar_app.clock`)."""
    return current_app.extensions["clock"].now()


def select_locale() -> str:
    """Swedish unless the visitor chose English."""
    chosen = session.get("lang")
    return chosen if chosen in LOCALES else "sv"


# Row ids are 32-bit integers on PostgreSQL; a larger number in a URL names nothing.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in our routes: a row id from 1 to MAX_ID, anything else is a 404."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


# Feed fetches are answered in front of Flask (web/feeds.py), so no URL rule names them.
FEED_ROUTE = "/feed/<token>.ics"


def _route_of_feed_fetch(environ: dict[str, Any]) -> str:
    path = environ.get("PATH_INFO", "")
    is_feed = path.startswith("/feed/") and path.endswith(".ics") and path.count("/") == 2
    return FEED_ROUTE if is_feed and environ.get("REQUEST_METHOD") in ("GET", "HEAD") else ""


class ObserveRequests:
    """WSGI around everything (feed fetches too): gives each request its id (echoed as
    ``X-Request-ID``) for the log lines, counts it for the metrics by route and status,
    and writes its summary line when structured logging is on."""

    def __init__(self, app: Flask, downstream: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.downstream = downstream
        self.metrics: RequestMetrics = app.extensions["metrics"].requests

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        info = logs.RequestInfo(
            request_id=logs.request_id_from(environ.get("HTTP_X_REQUEST_ID")),
            method=environ.get("REQUEST_METHOD", ""),
            route=_route_of_feed_fetch(environ),
        )
        context = logs.current_request.set(info)
        started = time.perf_counter()
        status = 500  # unless an answer starts

        def _start_response(line: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            nonlocal status
            status = int(line.split(" ", 1)[0])
            headers.append(("X-Request-ID", info.request_id))
            return start_response(line, headers, *exc_info)

        try:
            return self.downstream(environ, _start_response)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(info.method, info.route, status, elapsed)
            if self.app.extensions.get("log_requests"):
                logs.log_request(info, status, elapsed)
            logs.current_request.reset(context)


def init_app(app: Flask) -> None:
    """Register extensions, hooks and blueprints on ``app``."""
    # Before any route is added: rules look their converters up when they are compiled.
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _note_route() -> None:
        # First of all hooks, so that a request refused by a later one (CSRF, a bad API
        # token) is still counted under its route.
        info = logs.current_request.get()
        if info is not None and request.url_rule is not None:
            info.route = request.url_rule.rule

    @app.before_request
    def _refuse_nul() -> None:
        # PostgreSQL cannot store U+0000 in text: a form or query carrying one is refused
        # here with a 400, not failed later with a 500 (the API checks its JSON itself).
        fields = [request.args]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields.append(request.form)
        if any(
            "\x00" in value for field in fields for values in field.listvalues() for value in values
        ):
            abort(400)

    Babel(app, locale_selector=select_locale)
    csrf = CSRFProtect(app)
    formatting.init_app(app)

    @app.before_request
    def _load_user() -> Any:
        g.user = None
        g.api_token = None
        if request.path.startswith("/api/") and "Authorization" in request.headers:
            return _load_api_token()
        token = session.get("sid")
        if token:
            from calendar_app.web.auth import policy, session_ended_message

            check = accounts.check_session(db(), token, now=now_utc(), policy=policy())
            g.user = check.user
            if g.user is None:
                session.pop("sid", None)
                message = session_ended_message(check.reason)
                if message and not request.path.startswith("/api/"):
                    flash(message, "info")
        return None

    @app.teardown_appcontext
    def _close_db(_exc: BaseException | None) -> None:
        database = g.pop("db", None)
        if database is not None:
            database.close()

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.update(security_headers(current_app.config))
        if request.path != "/healthz" and not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    errors.init_app(app)

    from calendar_app import metrics
    from calendar_app.web import (
        admin,
        api,
        auth,
        booking,
        feeds,
        health,
        overview,
        person,
        photos,
        reminders,
        rights,
        settings,
        sources,
        webhooks,
    )

    auth.init_oidc(app)

    metrics.init_app(app)
    health.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(person.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(booking.bp)
    app.register_blueprint(rights.bp)
    app.register_blueprint(reminders.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(sources.bp)
    app.register_blueprint(photos.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(overview.bp)
    feeds.init_app(app)
    csrf.exempt(webhooks.bp)  # signed by Twilio instead; see webhooks._verified
    app.register_blueprint(webhooks.bp)
    from calendar_app.web import api_push, api_reminders  # noqa: F401  (add routes to api.bp)

    csrf.exempt(api.bp)  # JSON only; see api._json_body
    app.register_blueprint(api.bp)
    _rate_limits(app)
    # Outermost of our layers (outside the feed fetches), so every request is observed.
    app.wsgi_app = ObserveRequests(app, app.wsgi_app)  # type: ignore[method-assign]


def _load_api_token() -> Any:
    """Authenticate an API call by its bearer token; a bad token is refused at once."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    token = None
    if scheme.lower() == "bearer":
        token = tokens.token_for_secret(
            db(), secret.strip(), now=now_utc(), remote_addr=request.remote_addr or ""
        )
    if token is None:
        # The same answer for a malformed, unknown or revoked token.
        body = {"error": {"code": "auth.token_invalid", "message": "the API token is not valid"}}
        return jsonify(body), 401, {"WWW-Authenticate": 'Bearer realm="api"'}
    g.api_token = token
    return None


def _rate_key() -> str:
    """Count API calls per token or account, and everything else per address."""
    if g.get("api_token") is not None:
        return f"token:{g.api_token.id}"
    if g.get("user") is not None:
        return f"user:{g.user.id}"
    return f"addr:{get_remote_address()}"


def _rate_limits(app: Flask) -> None:
    """Request rate limits on the doors that can be hammered: login and the API.

    Flask-Limiter counts in memory per process by default; with several workers, point
    ``CALENDAR_APP_RATELIMIT_STORAGE_URI`` at a shared store (redis://...).
    """
    limiter = Limiter(key_func=get_remote_address, app=app, headers_enabled=True)
    app.extensions["rate_limiter"] = limiter
    for endpoint, method in (
        ("auth.login", "POST"),
        ("auth.oidc_start", "POST"),
        ("auth.oidc_callback", "GET"),
    ):
        # The limit is checked inside the wrapper, so the app must call the wrapped view.
        view: Any = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(
            lambda: app.config["RATELIMIT_LOGIN"],
            methods=[method],
            # Only what did not sign anyone in counts: a clinic behind one address may
            # have many people signing in at eight o'clock.
            deduct_when=lambda response: response.status_code >= 400,
        )(view)
    from calendar_app.web import api

    limiter.limit(lambda: app.config["RATELIMIT_API"], key_func=_rate_key)(api.bp)
    from calendar_app.web import webhooks

    limiter.limit(lambda: app.config["RATELIMIT_WEBHOOKS"])(webhooks.bp)
