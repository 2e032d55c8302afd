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
# Written as people and programs write them: with a hyphen or one of the dashes a word
# processor or a phone puts in, and percent-encoded (UTF-8) as an access log quotes a query
# string. Python's \d also takes other digits, fullwidth ones (１９９０…) among them.

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_ENCODED_DASH = r"%2d|%e2%80%9[0-5]|%e2%88%92|%ef%b9%98|%ef%b9%a3|%ef%bc%8d"
_PLUS = r"(?:\+|\uff0b|%2b|%ef%bc%8b)"
# A number starts where no digit is before it, or right after a %XX escape (so that the
# "20" of "%20" is not read as its first digits).
_NUMBER_START = r"(?:(?<![\d%])(?<!%[0-9a-f])|(?<=%[0-9a-f]{2}))"

# A personnummer or samordningsnummer: 10 or 12 digits, with or without a dash or + before
# the last four, not part of a longer number. Other numbers of that length (a Unix time in
# seconds) are scrubbed too: a lost figure is cheaper than a leaked identity.
PERSONNUMMER = re.compile(
    rf"{_NUMBER_START}(?:\d{{2}})?\d{{6}}(?:[-{_DASHES}]|{_ENCODED_DASH}|{_PLUS})?\d{{4}}(?!\d)",
    re.IGNORECASE,
)
# What may stand between the digits of a phone number: spaces (also as %20 or a query's +),
# dashes, dots, slashes and the brackets of "+46 (0)70-123 45 67"; at most two together.
_SPACE_OR_DASH = rf"[\s+\-{_DASHES}]|%20|{_ENCODED_DASH}"
_NEXT_DIGIT = rf"(?:(?:{_SPACE_OR_DASH}|[.()/]|%2e|%2f|%28|%29){{0,2}}\d)"
_NEXT_DIGIT_NATIONAL = rf"(?:(?:{_SPACE_OR_DASH}){{0,2}}\d)"
# A phone number: international, 7-15 digits after + (also %2B or fullwidth) or 0046; or a
# Swedish mobile number written the national way (070-123 45 67).
PHONE = re.compile(
    rf"(?:{_PLUS}\d{_NEXT_DIGIT}{{6,14}}"
    rf"|{_NUMBER_START}0046{_NEXT_DIGIT}{{7,11}}"
    rf"|{_NUMBER_START}07{_NEXT_DIGIT_NATIONAL}{{8}})(?!\d)",
    re.IGNORECASE,
)
# A feed token: whatever follows /feed/ in a path, however the path is written (./,
# doubled or back slashes, percent-encoded), up to a space, a quote, ? or #.
_SLASH = r"(?:/|\\|%2f|%5c)"
FEED_TOKEN = re.compile(rf"({_SLASH}feed)(?:{_SLASH}|\.|%2e)*{_SLASH}[^\s?#\"']+", re.IGNORECASE)
PERSONNUMMER_MARK = "[personnummer]"
PHONE_MARK = "[phone]"
FEED_MARK = r"\1/…"

# Our own fields: made here (request id checked or generated, route from the URL map),
# so they are not scrubbed, which keeps a generated id whole.
OWN_FIELDS = frozenset({"request_id", "method", "route", "status", "duration_ms"})
# The attributes every LogRecord has; anything else on a record came in as `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ScrubPersonalData(logging.Filter):
    """Rewrites a record so that no personnummer, phone number or feed token is in its
    message, its traceback or its extra fields."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._traceback = logging.Formatter()

    def scrub(self, text: str) -> str:
        """``text`` with feed tokens, phone numbers and personnummer replaced."""
        text = FEED_TOKEN.sub(FEED_MARK, text)
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
