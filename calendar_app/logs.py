"""Log lines: one JSON object a line in production, today's text lines in development.

:func:`configure_logging` puts one handler on the root logger (for the web app, the
scheduler and gunicorn alike). Every line it writes goes through two filters: one adds
the request's id, method and route (the URL rule, never the path) to lines logged while a
request is served; one scrubs, as defence in depth, whatever looks like a personnummer,
a phone number or a feed token, whatever logged it. The request id comes from an
incoming ``X-Request-ID`` when that is a sane short token, and is echoed in the answer.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

# The request's own summary line (method, route, status, duration), one per request.
request_log = logging.getLogger("calendar_app.requests")

# --- what is scrubbed ---------------------------------------------------------------------

# A personnummer or samordningsnummer: 10 or 12 digits, with or without - or + before the
# last four, not part of a longer number. Other numbers of that length (a Unix time in
# seconds) are scrubbed too: a lost figure is cheaper than a leaked identity.
PERSONNUMMER = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")
# A phone number in E.164 (+46701234567), also written with spaces or dashes, or with the
# plus URL-encoded (%2B46701234567, as an access log quotes a query string).
PHONE = re.compile(r"(?:\+|%2[Bb])\d(?:[ -]?\d){6,14}(?!\d)")
PERSONNUMMER_MARK = "[personnummer]"
PHONE_MARK = "[phone]"

# Our own fields: made here (request id checked or generated, route from the URL map),
# so they are not scrubbed, which keeps a generated id whole.
OWN_FIELDS = frozenset({"request_id", "method", "route", "status", "duration_ms"})
# The attributes every LogRecord has; anything else on a record came in as `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _feed_token_filter() -> logging.Filter:
    # Imported late: web.feeds pulls in Flask and the services, and gunicorn's master
    # builds this module's filters from its logging configuration.
    from calendar_app.web.feeds import HideFeedTokens

    return HideFeedTokens()


class ScrubPersonalData(logging.Filter):
    """Rewrites a record so that no personnummer, phone number or feed token is in its
    message, its traceback or its extra fields. Feed tokens are cut by the feeds' own
    :class:`~calendar_app.web.feeds.HideFeedTokens`."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._feed_tokens = _feed_token_filter()
        self._traceback = logging.Formatter()

    def scrub(self, text: str) -> str:
        """``text`` with feed tokens, phone numbers and personnummer replaced."""
        if "/feed/" in text:
            record = logging.makeLogRecord({"msg": text})
            self._feed_tokens.filter(record)
            text = str(record.msg)
        text = PHONE.sub(PHONE_MARK, text)
        return PERSONNUMMER.sub(PERSONNUMMER_MARK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted stays as it is
            message = None
        if message is not None:
            clean = self.scrub(message)
            if clean != message or record.args:
                record.msg, record.args = clean, None
        if record.exc_info:
            # Formatted once here, so the traceback is scrubbed too; formatters (the JSON
            # one included) print exc_text when exc_info is gone.
            record.exc_text = self._traceback.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and key not in OWN_FIELDS and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


def scrub(text: str) -> str:
    """``text`` as a log line would carry it (for tests and one-off uses)."""
    return ScrubPersonalData().scrub(text)


# --- the request a line belongs to --------------------------------------------------------


@dataclass
class RequestInfo:
    """What the log lines of one request share; ``route`` is filled once Flask matched it."""

    request_id: str
    method: str
    route: str = ""


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "current_request", default=None
)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def request_id_from(header: str | None) -> str:
    """The incoming ``X-Request-ID`` if it is a short token of safe characters that looks
    like nothing personal; otherwise a new random id."""
    if (
        header
        and _SANE_REQUEST_ID.fullmatch(header)
        and not PERSONNUMMER.search(header)
        and not PHONE.search(header)
    ):
        return header
    return uuid.uuid4().hex


class AddRequestContext(logging.Filter):
    """Adds ``request_id``, ``method`` and ``route`` to lines logged during a request, and
    the same fields (from its atoms) to gunicorn's access line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            atoms = record.args
            for field, atom in (
                ("request_id", "{x-request-id}o"),
                ("method", "m"),
                ("status", "s"),
                ("duration_ms", "M"),
            ):
                value = atoms.get(atom)
                if value not in (None, "-"):
                    is_number = field in ("status", "duration_ms") and str(value).isdigit()
                    setattr(record, field, int(str(value)) if is_number else value)
            return True
        info = current_request.get()
        if info is not None:
            for field in ("request_id", "method", "route"):
                if not hasattr(record, field) and getattr(info, field):
                    setattr(record, field, getattr(info, field))
        return True


def log_request(info: RequestInfo, status: int, seconds: float) -> None:
    """The request's own summary line: method, route, status and duration, no path."""
    duration_ms = round(seconds * 1000, 1)
    request_log.info(
        "%s %s %s %.1f ms",
        info.method,
        info.route or "-",
        status,
        duration_ms,
        extra={"status": status, "duration_ms": duration_ms},
    )


# --- formats and the handler --------------------------------------------------------------


class JsonLines(JsonFormatter):
    """``{"time", "level", "logger", "message", ...extra fields}``, time in UTC ISO 8601."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
            },
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextLines(logging.Formatter):
    """Plain lines, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


_OURS = "_calendar_app_handler"


def make_handler(log_format: str = "json", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler in ``log_format`` ("json" or "text") with the request context
    and the scrubbing filter (also used by gunicorn's logging configuration)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines())
    handler.addFilter(AddRequestContext())
    handler.addFilter(ScrubPersonalData())
    setattr(handler, _OURS, True)
    return handler


def installed_handler() -> logging.Handler | None:
    """The root handler :func:`configure_logging` installed, if any."""
    return next((h for h in logging.getLogger().handlers if getattr(h, _OURS, False)), None)


def configure_logging(config: Mapping[str, Any], stream: IO[str] | None = None) -> logging.Handler:
    """Send every log line through one root handler in ``LOG_FORMAT`` at ``LOG_LEVEL``.

    Safe to call again (the scheduler, a second app in one process, gunicorn's worker
    after its master): the handler installed before is replaced, never doubled. Flask's
    ``app.logger`` is not touched; since the root logger now has a handler, Flask adds
    none of its own when the app's logger is first used.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = make_handler(str(config.get("LOG_FORMAT", "text")), stream)
    root.addHandler(handler)
    root.setLevel(str(config.get("LOG_LEVEL", "INFO")).upper())
    # If the app's logger was used before this call, Flask gave it its own handler, and
    # every line of the app would come out twice (once as text): take that one away.
    from flask.logging import default_handler

    logging.getLogger("calendar_app").removeHandler(default_handler)
    return handler


def gunicorn_logconfig(level: str = "info", access_log: bool = True) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` for JSON lines: its error log, its access log (with
    the request id the app echoed) and the root logger share one JSON handler each way."""
    handler = {"()": "calendar_app.logs.make_handler", "log_format": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # On the access logger itself, so it reads the atoms before the feeds' token
        # filter (added to that logger later, by the app) flattens the line.
        "filters": {"request_context": {"()": "calendar_app.logs.AddRequestContext"}},
        "root": {"level": level.upper(), "handlers": ["json_stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": ["json_stderr"],
                "propagate": False,
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["json_stdout"] if access_log else [],
                "filters": ["request_context"],
                "propagate": False,
            },
        },
        "handlers": {
            "json_stderr": {**handler, "stream": "ext://sys.stderr"},
            "json_stdout": {**handler, "stream": "ext://sys.stdout"},
        },
        "formatters": {},
    }
