"""The CalDAV adapter: a calendar collection on a CalDAV server (RFC 4791), read with the
``caldav`` library.

One read finds the calendar (the URL itself, or discovered from a principal or calendar
home), asks for its sync-token (RFC 6578; a CalendarServer CTag where there is none) and,
unless that and the window are unchanged since the last read, sends one time-range
``calendar-query`` for the window's events, unexpanded, so a series arrives as its master
with its overrides in one object. The objects are parsed together by
:func:`calendar_app.providers.ics.parse`, which also drops a UID found twice.

A read lists everything the server holds in the window, so it is ``complete``: what the
merge then misses is cancelled. That is right for the sync service's window (a year back,
two ahead): past bookings are never cancelled, and a future one can only be missing if it
left the calendar or moved beyond the window's end.

HTTP goes through :func:`netguard.guarded_session` (a requests session put in place of the
library's own), so every connection, redirects included, is checked against
the address policy, the whole read is bounded by a deadline, and each answer is capped at
``max_bytes`` while it arrives. The URL and the password may be secrets: no message made
here names more than the kind of failure.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import caldav
import requests
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.lib import error as dav_error

from calendar_app.domain.bookings import ReadResult
from calendar_app.providers import (
    AdapterRead,
    Prepared,
    ProviderError,
    SourceConfig,
    Window,
    ics,
    netguard,
)
from calendar_app.providers.ics_url import DEADLINE_TIMEOUTS, http_url, prepared_address
from calendar_app.providers.netguard import PUBLIC_ONLY, AddressPolicy

ADAPTER = "caldav"
TIMEOUT_SECONDS = 20.0
_CALENDAR_TYPE = "{urn:ietf:params:xml:ns:caldav}calendar"
_PRINCIPAL_TYPE = "{DAV:}principal"
_CTAG = "{http://calendarserver.org/ns/}getctag"


class _HideLibraryDetails(logging.Filter):
    """The caldav library writes request paths and server answers into its log messages,
    formatted before logging (so the arguments cannot be cleaned), on its own logger and on
    the root logger. Its records keep their level and place; their text and traceback,
    which may name a secret address, are left out."""

    _package = str(Path(caldav.__file__).resolve().parent)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "caldav" or (
            record.name == "root" and record.pathname.startswith(self._package)
        ):
            record.msg = "caldav library (%s:%s): details left out, they may name the address"
            record.args = (Path(record.pathname).name, record.lineno)
            record.exc_info = None
            record.exc_text = None
        return True


_HIDE_DETAILS = _HideLibraryDetails()


def _hide_library_details() -> None:
    for logger in (logging.getLogger("caldav"), logging.getLogger()):
        if _HIDE_DETAILS not in logger.filters:
            logger.addFilter(_HIDE_DETAILS)


def dav_url(url: str) -> str:
    """The address as entered, if it is http(s) without a user name or password in it."""
    url = url.strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ProviderError("source.url", "the CalDAV address must be an http(s) URL")
    return http_url(url)


def read_calendar(
    url: str,
    window: Window,
    cursor: Mapping[str, str],
    *,
    username: str = "",
    password: str = "",
    calendar_name: str = "",
    default_zone: str,
    max_bytes: int,
    timeout: float = TIMEOUT_SECONDS,
    policy: AddressPolicy = PUBLIC_ONLY,
) -> AdapterRead:
    """Read the window's events of the calendar at (or found from) ``url``.

    ``read`` is None when the calendar's sync-token (or its objects' ETags) and the window
    are those ``cursor`` holds. ``calendar_name`` picks a discovered calendar by display
    name or last path segment; without it the first one is taken.
    """
    target = dav_url(url)
    netguard.check_url(target, policy)
    with netguard.time_limit(timeout * DEADLINE_TIMEOUTS):
        return _read(
            target,
            window,
            cursor,
            username=username,
            password=password,
            calendar_name=calendar_name,
            default_zone=default_zone,
            max_bytes=max_bytes,
            timeout=timeout,
            policy=policy,
        )


def _read(
    url: str,
    window: Window,
    cursor: Mapping[str, str],
    *,
    username: str,
    password: str,
    calendar_name: str,
    default_zone: str,
    max_bytes: int,
    timeout: float,
    policy: AddressPolicy,
) -> AdapterRead:
    client = _client(url, username, password, timeout, policy, max_bytes)
    try:
        with _failures_as_provider_errors():
            calendar, properties = _find_calendar(client, url, calendar_name)
            window_key = f"{window.start.date().isoformat()}/{window.end.date().isoformat()}"
            here = _digest(str(calendar.url))
            token = _change_token(properties)
            same_place = cursor.get("calendar") == here and cursor.get("window") == window_key
            if token and same_place and cursor.get("sync_token") == token:
                return AdapterRead(None, dict(cursor))
            objects = _listed(
                calendar.search(
                    event=True,
                    start=window.start,
                    end=window.end,
                    expand=False,  # the master with its overrides, as stored
                    props=cast(Any, [dav.GetEtag()]),  # each object's ETag with its data
                )
            )
            found = sorted(
                (str(item.url), str(item.props.get(dav.GetEtag.tag, "")), item.data or "")
                for item in objects
            )
    finally:
        client.close()
    etags = _digest("\n".join(f"{href} {etag}" for href, etag, _ in found))
    new_cursor = {"calendar": here, "window": window_key, "etags": etags}
    if token:
        new_cursor["sync_token"] = token
    elif same_place and cursor.get("etags") == etags:
        return AdapterRead(None, new_cursor)
    if not found:
        return AdapterRead(ReadResult(bookings=()), new_cursor)
    data = "\r\n".join(text.strip() for _, _, text in found).encode()
    return AdapterRead(ics.parse(data, default_zone=default_zone, max_bytes=max_bytes), new_cursor)


def _client(
    url: str,
    username: str,
    password: str,
    timeout: float,
    policy: AddressPolicy,
    max_bytes: int,
) -> DAVClient:
    _hide_library_details()
    client = DAVClient(
        url=url,
        username=username or None,
        password=password or None,
        timeout=max(1, math.ceil(timeout)),
    )
    # The library's requests session honours proxies and .netrc from the environment and
    # checks no addresses; ours does neither and checks every connection.
    client.session.close()
    session = netguard.guarded_session(policy)
    session.hooks["response"].append(netguard.size_cap(max_bytes))
    client.session = cast(Any, session)
    return client


def _find_calendar(
    client: DAVClient, url: str, calendar_name: str
) -> tuple[Calendar, dict[str, Any]]:
    """The calendar at ``url``, or the one chosen among those found from it; its properties."""
    wanted = [dav.ResourceType(), dav.SyncToken(), dav.DisplayName()]
    given = client.calendar(url=url)
    properties = _properties(given, wanted)
    types = _types(properties)
    if _CALENDAR_TYPE in types:
        return given, properties
    if "{DAV:}collection" not in types:
        raise ProviderError("source.not_calendar", "the address is not a calendar collection")
    # A principal, a calendar home, or a folder above them: the user's calendars there.
    calendars = _listed(client.principal().calendars())
    if _PRINCIPAL_TYPE not in types:
        base = str(given.url).rstrip("/") + "/"
        calendars = [c for c in calendars if str(c.url).startswith(base)]
    if calendar_name:
        calendars = [c for c in calendars if _named(c, calendar_name)]
    if not calendars:
        raise ProviderError("source.not_calendar", "no calendar was found at the address")
    chosen = calendars[0]
    return chosen, _properties(chosen, [dav.ResourceType(), dav.SyncToken()])


def _properties(resource: Calendar, wanted: list[Any]) -> dict[str, Any]:
    """The properties ``wanted`` of ``resource``: the resource type as the tags of its
    elements, the others as their text.

    The library's own parsing keeps one value of a property, so a resource type of
    ``<collection/><principal/>`` would lose all but one of its types.
    """
    found = resource.get_properties(wanted, parse_props=False)
    if not isinstance(found, dict):
        raise ProviderError("source.protocol", "the CalDAV library gave an unexpected answer")
    properties: dict[str, Any] = {}
    for tag, element in found.items():
        if element is None:
            continue
        if tag == dav.ResourceType.tag:
            properties[tag] = [str(child.tag) for child in element if isinstance(child.tag, str)]
        else:
            properties[tag] = (element.text or "").strip() or None
    return properties


def _listed(value: object) -> list[Any]:
    # The library's methods are typed for its sync and async clients alike.
    if not isinstance(value, list):
        raise ProviderError("source.protocol", "the CalDAV library gave an unexpected answer")
    return value


def _types(properties: Mapping[str, Any]) -> set[str]:
    value = properties.get(dav.ResourceType.tag) or []
    return {value} if isinstance(value, str) else {str(v) for v in value}


def _named(calendar: Calendar, name: str) -> bool:
    segment = str(calendar.url).rstrip("/").rsplit("/", 1)[-1]
    return name == segment or name == calendar.get_display_name()


def _change_token(properties: Mapping[str, Any]) -> str:
    token = properties.get(dav.SyncToken.tag)
    if token:
        return str(token)
    ctag = properties.get(_CTAG)
    return f"ctag:{ctag}" if ctag else ""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextmanager
def _failures_as_provider_errors() -> Iterator[None]:
    """Turn what the library or the network raised into a ProviderError without the URL."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:  # the library raises lxml, requests and its own errors
        raise _provider_error(exc) from None


def _provider_error(exc: Exception) -> ProviderError:
    if isinstance(exc, netguard.AddressBlocked):
        return ProviderError("source.address_blocked", netguard.BLOCKED_MESSAGE)
    if isinstance(exc, netguard.AnswerTooLarge):
        return ProviderError("ics.too_large", "an answer of the server is too large")
    if isinstance(exc, requests.Timeout):
        return ProviderError("source.timeout", "the server did not answer in time")
    if isinstance(exc, requests.RequestException):
        return ProviderError("source.unreachable", f"could not reach it ({type(exc).__name__})")
    if isinstance(exc, dav_error.AuthorizationError):
        return ProviderError("source.auth", "the server refused the user name or password")
    if isinstance(exc, dav_error.NotFoundError):
        return ProviderError("source.http", "the server answered 404")
    if isinstance(exc, dav_error.DAVError):
        status = _status(exc)
        status = f"answered {status}" if status else "refused the request"
        return ProviderError("source.http", f"the server {status} ({type(exc).__name__})")
    return ProviderError(
        "source.protocol", f"the server's answer is not CalDAV ({type(exc).__name__})"
    )


def _status(exc: dav_error.DAVError) -> str:
    """The HTTP status of a library error, if it names one.

    The library puts ``"<status> <reason>\\n\\n<body>"`` in the error's ``url`` or ``reason``
    field; only the three digits are taken, as the rest may echo the secret URL.
    """
    for text in (exc.reason, exc.url):
        match = re.match(r"\s*([1-5]\d\d)\b", str(text or ""))
        if match:
            return match.group(1)
    return ""


class CalDavAdapter:
    """A calendar on a CalDAV server as a synced source.

    Secrets: ``url`` (a calendar collection, or a principal or home to find it from),
    ``username`` and ``password``. Setting: ``calendar``, the display name or path segment
    of the calendar to take when the URL is not a calendar itself. The cursor holds the
    sync-token, a digest of the objects' ETags, of the calendar's URL and the window.
    """

    kind = ADAPTER

    def prepare(self, fields: Mapping[str, str], allowed_hosts: frozenset[str]) -> Prepared:
        prepared = prepared_address(dav_url(fields.get("url", "")), fields, allowed_hosts)
        calendar = fields.get("calendar", "").strip()
        if calendar:
            prepared.settings["calendar"] = calendar
        return prepared

    def read(self, config: SourceConfig, window: Window, cursor: Mapping[str, str]) -> AdapterRead:
        url = config.secrets.get("url")
        if not url:
            raise ProviderError("source.secret", "the source has no address")
        return read_calendar(
            url,
            window,
            cursor,
            username=config.secrets.get("username", ""),
            password=config.secrets.get("password", ""),
            calendar_name=config.settings.get("calendar", ""),
            default_zone=config.default_zone,
            max_bytes=config.max_bytes,
            timeout=config.timeout,
            policy=AddressPolicy(config.allowed_hosts),
        )
