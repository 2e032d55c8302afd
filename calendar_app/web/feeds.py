"""Calendar feeds: the subscribable URL itself, the page to make and revoke them, and
"Lägg till i kalender" for one visit."""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from typing import Any

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from limits import parse
from werkzeug.http import http_date, quote_etag
from werkzeug.wrappers import Request

from calendar_app import logs
from calendar_app.domain.errors import DomainError
from calendar_app.models import Booking, Person, Role
from calendar_app.services import feed_render, feeds
from calendar_app.services.access import AccessDenied
from calendar_app.web import db, now_utc, security_headers
from calendar_app.web.auth import current_actor, login_required
from calendar_app.web.settings import refused

bp = Blueprint("feeds", __name__)
log = logging.getLogger(__name__)

_FEED_REQUEST = re.compile(r"^/feed/([^/]+)\.ics$")
CALENDAR = "text/calendar; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
# Phones and calendar services fetch again at their own pace; a cache between may keep a
# copy for five minutes, but only the subscriber's own.
CACHE_CONTROL = "private, max-age=300"
# The same few bytes for every address that is no live feed: not our HTML error page, which
# would quote the address asked for.
NOT_FOUND = "Kalendern finns inte. / No such calendar.\n"
FAILED = "Något gick fel. Försök igen om en stund. / Something went wrong; try again later.\n"
TOO_MANY = "För många försök. Vänta en stund. / Too many attempts; wait a while.\n"


class FeedFetches:
    """WSGI in front of Flask that answers ``GET``/``HEAD /feed/<token>.ics`` itself.

    Phones poll every feed several times an hour, and a feed needs none of what Flask does
    for a page (session cookie, CSRF, the request limiter, the hooks): under gunicorn that
    machinery alone costs twice what sending the stored bytes does. Everything else, other
    methods on a feed path included, goes on to Flask.
    """

    def __init__(self, app: Flask, downstream: Any) -> None:
        self.app = app
        self.downstream = downstream

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        match = _FEED_REQUEST.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.downstream(environ, start_response)
        request = Request(environ)
        try:
            answer = self.answer(request, match.group(1))
        except Exception:
            # The message names no path: the token is in it.
            log.exception("a feed could not be served")
            answer = Response(FAILED, 500, content_type=TEXT)
        if isinstance(answer, Response):
            for name, value in security_headers(self.app.config):
                answer.headers.setdefault(name, value)
        return answer(environ, start_response)

    def answer(self, request: Request, token: str) -> Response | FeedAnswer:
        """The feed, a 304, or a plain 404 that never tells whether a token once existed.

        The usual fetch is served the lean way (feeds.serve_current: on PostgreSQL one
        statement, on its own pool); the rest take the general path (serve_in_general).
        """
        now = self.app.extensions["clock"].now()  # outside Flask: no app context here
        conditions = _conditions(request)
        # Two representations: gzip for the clients that take it (calendar apps do), plain
        # for the rest; each has its own strong ETag, and either in If-None-Match is current.
        compressed = request.accept_encodings.quality("gzip") > 0
        served = feeds.serve_current(
            self.app.extensions["fetch_engine"] or self.app.extensions["engine"],
            token,
            now=now,
            conditions=conditions,
            zone=self.app.config["DEFAULT_TIMEZONE"],
            method=request.method,
            remote_addr=request.remote_addr or "",
        )
        if served is None:
            served = feeds.serve_in_general(
                self.app.extensions["session_factory"],
                token,
                now=now,
                conditions=conditions,
                method=request.method,
                remote_addr=request.remote_addr or "",
            )
        if served is None:
            return self.miss(request)
        return FeedAnswer(served, compressed, security_headers(self.app.config))

    def miss(self, request: Request) -> Response:
        """404 for an address that is no live feed; 429 once the client's misses exceed
        ``RATELIMIT_FEED_MISSES``. Feed addresses are guessed only by trying, so only misses
        count: a live feed is served to any address, a household's phones behind one
        address included, whatever else that address tried."""
        config = self.app.config
        limiter = self.app.extensions["rate_limiter"].limiter
        limit = parse(config["RATELIMIT_FEED_MISSES"])
        if config["RATELIMIT_ENABLED"] and not limiter.hit(
            limit, "feed-miss", request.remote_addr or ""
        ):
            return Response(TOO_MANY, 429, content_type=TEXT, headers={"Retry-After": "3600"})
        return Response(NOT_FOUND, 404, content_type=TEXT)


def _conditions(request: Request) -> feeds.Conditions:
    """The request's validators, parsed by werkzeug."""
    if_none_match = request.if_none_match
    if if_none_match:
        return feeds.Conditions(
            tags=frozenset(if_none_match.as_set(include_weak=True)),
            any_tag=if_none_match.star_tag,
        )
    return feeds.Conditions(since=request.if_modified_since)


@dataclass(frozen=True)
class FeedAnswer:
    """The feed or its 304, as a WSGI app.

    Built by hand rather than as a werkzeug Response: this answers every poll of every
    phone, and on a host that is cold between polls werkzeug's general machinery took
    0.3 ms, a tenth of the whole request (docs/benchmarks.md, calendar feeds).
    """

    served: feeds.Served
    compressed: bool  # the client takes gzip: the stored bytes are sent as they are
    security: list[tuple[str, str]]  # web.security_headers

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served = self.served
        headers = [
            ("ETag", quote_etag(f"{served.etag}-gzip" if self.compressed else served.etag)),
            ("Last-Modified", http_date(served.last_modified)),
            ("Cache-Control", CACHE_CONTROL),
            ("Vary", "Accept-Encoding"),
            ("X-Robots-Tag", "noindex"),
            *self.security,
        ]
        if served.status == 304:
            start_response("304 Not Modified", headers)
            return []
        body = served.body_gzip or b""
        if self.compressed:
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = gzip.decompress(body)
        headers += [("Content-Type", CALENDAR), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def feed_url(token: str) -> str:
    """The feed's https address: the service's public address, or the one asked on."""
    base = current_app.config["PUBLIC_BASE_URL"] or request.url_root.rstrip("/")
    return base + feeds.feed_path(token)


def webcal_url(url: str) -> str:
    """The same address for phones: webcal:// opens the calendar app's subscribe dialog."""
    return "webcal://" + url.split("://", 1)[1]


def qr_data_uri(url: str) -> str:
    """A QR code of ``url`` as an SVG data URI (our pages allow images from data:)."""
    return str(segno.make(url, error="m").svg_data_uri(scale=4, border=2))


def _page(
    person_id: int, *, new_token: str | None = None, status: int = 200
) -> ResponseReturnValue:
    person = db().get(Person, person_id)
    try:
        items = feeds.list_feeds(
            db(), current_actor(), person_id, now=now_utc(), audited=new_token is None
        )
    except AccessDenied:
        abort(403)
    assert person is not None
    new = None
    if new_token is not None:
        url = feed_url(new_token)
        webcal = webcal_url(url)
        new = {"url": url, "webcal": webcal, "qr": qr_data_uri(webcal)}
    return (
        render_template(
            "person/feeds.html",
            person=person,
            feeds=items,
            new=new,
            is_helper=g.user.role == Role.HELPER,
        ),
        status,
    )


@bp.get("/people/<int:person_id>/feeds")
@login_required
def page(person_id: int) -> ResponseReturnValue:
    """Prenumerera på kalendern: every feed of the person, and a form to make one."""
    return _page(person_id)


@bp.post("/people/<int:person_id>/feeds")
@login_required
def create(person_id: int) -> ResponseReturnValue:
    """Make a feed; its address is shown on the answer page only."""
    form = request.form
    try:
        made = feeds.create_feed(
            db(),
            current_actor(),
            person_id,
            level=form.get("level", ""),
            label=form.get("label", ""),
            alarms=form.get("alarms") == "on",
            now=now_utc(),
            locale=str(get_locale() or "sv"),
        )
    except DomainError as exc:
        return refused(exc, person_id, "feeds.page")
    # Rendered, not flashed or redirected: the address is the secret, and a flashed
    # message would travel in the session cookie.
    return _page(person_id, new_token=made.token, status=201)


@bp.post("/people/<int:person_id>/feeds/<int:feed_id>/revoke")
@login_required
def revoke(person_id: int, feed_id: int) -> ResponseReturnValue:
    """Stop a feed at once."""
    try:
        feeds.revoke_feed(db(), current_actor(), person_id, feed_id, now=now_utc())
    except DomainError as exc:
        return refused(exc, person_id, "feeds.page")
    flash(_("The feed is stopped. Its address no longer works."), "info")
    return redirect(url_for("feeds.page", person_id=person_id))


@bp.post("/people/<int:person_id>/feeds/<int:feed_id>/rotate")
@login_required
def rotate(person_id: int, feed_id: int) -> ResponseReturnValue:
    """A new address for a feed (say, after a lost phone); the old one stops at once."""
    try:
        made = feeds.rotate_feed(db(), current_actor(), person_id, feed_id, now=now_utc())
    except DomainError as exc:
        return refused(exc, person_id, "feeds.page")
    return _page(person_id, new_token=made.token, status=201)


@bp.get("/people/<int:person_id>/bookings/<int:booking_id>/calendar.ics")
@login_required
def booking_file(person_id: int, booking_id: int) -> ResponseReturnValue:
    """Lägg till i kalender: one visit as a file the phone or computer opens."""
    booking = db().get(Booking, booking_id)
    if booking is None or booking.person_id != person_id:
        abort(404)
    try:
        data = feed_render.booking_ics(
            db(),
            current_actor(),
            booking_id,
            request.args.get("occ", ""),
            now=now_utc(),
            locale=str(get_locale() or "sv"),
        )
    except AccessDenied:
        abort(403)
    except DomainError:
        abort(404)
    return Response(
        data,
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="besok.ics"'},
    )


# Feed URLs are secrets: request lines in access logs (the development server's, gunicorn's)
# and any message quoting a path show the feed path without its token.
class HideFeedTokens(logging.Filter):
    """Rewrites a log record's message so that no feed token is in it, however the path
    was written (the same pattern as the JSON lines' scrubber, calendar_app.logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left alone
            return True
        if "feed" in message.lower():
            record.msg, record.args = logs.FEED_TOKEN.sub(logs.FEED_MARK, message), None
        return True


_HIDE_FEED_TOKENS = HideFeedTokens()
LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def init_app(app: Flask) -> None:
    """Serve feeds in front of Flask (see :class:`FeedFetches`); hide feed tokens in the
    access logs. (The application's own error log names the
    route's rule, never the path; ``app.logger`` is left alone, since touching it gives
    it Flask's default handler and doubles every line where logging is configured.)"""
    app.wsgi_app = FeedFetches(app, app.wsgi_app)  # type: ignore[method-assign]
    for logger in (logging.getLogger(name) for name in LOGGERS):
        if _HIDE_FEED_TOKENS not in logger.filters:
            logger.addFilter(_HIDE_FEED_TOKENS)
