"""The ICS/webcal URL adapter: a published calendar fetched over HTTP(S).

Conditional GET (ETag / If-Modified-Since) so an unchanged calendar costs one 304; a
timeout per socket operation and a total deadline, a size cap read while streaming, at
most a few redirects, gzip as the server sends it. The address is checked against the
:mod:`~calendar_app.providers.netguard` policy before the first request and before each
redirect, and every connection again. Anything that is not a whole calendar raises
:class:`ProviderError` and stores nothing.

The URL may carry a secret (a calendar's private address), so no message or log line made
here contains it; at most the host is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

import requests

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
from calendar_app.providers.netguard import PUBLIC_ONLY, AddressPolicy

ADAPTER = "ics_url"
MAX_REDIRECTS = netguard.MAX_REDIRECTS
TIMEOUT_SECONDS = 20.0
# requests' timeout bounds each socket operation; a server that drips bytes is stopped by
# this many timeouts in total.
DEADLINE_TIMEOUTS = 3
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

# HTTP Basic as (user name, password), or any requests authentication (a bearer token).
Auth = tuple[str, str] | requests.auth.AuthBase


@dataclass(frozen=True)
class Fetched:
    """A fetch: the calendar read, or ``read`` None when the server said 304."""

    read: ReadResult | None
    etag: str | None
    last_modified: str | None


def http_url(url: str) -> str:
    """``webcal://`` as https; anything but http(s), or a user name in it, is refused."""
    url = url.strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("source.url", "the calendar address must be an http(s) or webcal URL")
    if "@" in parts.netloc:
        # Stored with the address they would be shown and logged with it; refused instead.
        raise ProviderError(
            "source.url",
            "the address contains a user name or password: "
            "put them in the user name and password fields instead",
        )
    return url


def fetch(
    url: str,
    *,
    default_zone: str,
    max_bytes: int,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    session: requests.Session | None = None,
    policy: AddressPolicy = PUBLIC_ONLY,
    auth: Auth | None = None,
) -> Fetched:
    """Fetch and parse the calendar at ``url`` unless it is unchanged since the last read.

    ``policy`` says which non-public hosts may be reached; ``auth`` (HTTP Basic) goes only
    to the host of ``url`` (a redirect elsewhere drops it). Everything, redirects included,
    must finish within ``DEADLINE_TIMEOUTS`` times ``timeout``. A ``session`` given replaces
    the guarded one (its connections are then not checked, the URLs still are).
    """
    target = http_url(url)
    headers = {"Accept": "text/calendar, */*;q=0.1", "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    client = session or netguard.guarded_session(policy)
    try:
        with netguard.time_limit(timeout * DEADLINE_TIMEOUTS) as clock:
            response, body = download(
                client,
                target,
                headers,
                auth=auth,
                policy=policy,
                timeout=timeout,
                clock=clock,
                max_bytes=max_bytes,
            )
    finally:
        if session is None:
            client.close()
    if body is None:
        return Fetched(None, etag, last_modified)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/html" or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        raise ProviderError("source.not_calendar", "the address gives a web page, not a calendar")
    return Fetched(
        ics.parse(body, default_zone=default_zone, max_bytes=max_bytes),
        response.headers.get("etag"),
        response.headers.get("last-modified"),
    )


def download(
    client: requests.Session,
    target: str,
    headers: dict[str, str],
    *,
    auth: Auth | None,
    policy: AddressPolicy,
    timeout: float,
    clock: netguard.Deadline,
    max_bytes: int,
    form: list[tuple[str, str]] | None = None,
    too_large: str = "the calendar",
) -> tuple[requests.Response, bytes | None]:
    """The final response and its body (None for 304), redirects followed and checked.

    With ``form`` the request is a POST of it, and a redirect is refused rather than
    followed: the form may hold what must reach only this server.
    """
    netguard.check_url(target, policy)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = client.request(
                "POST" if form is not None else "GET",
                target,
                headers=headers,
                data=form,
                auth=auth,
                timeout=max(min(timeout, clock.remaining()), 0.01),
                stream=True,
                allow_redirects=False,
            )
            if response.is_redirect and "location" in response.headers:
                response.close()
                if form is not None:
                    raise ProviderError("source.redirects", "the server redirected a search")
                location = http_url(urljoin(target, response.headers["location"]))
                netguard.check_url(location, policy)
                if not _same_origin_for_auth(urlsplit(target), urlsplit(location)):
                    auth = None
                target = location
                continue
            break
        else:
            raise ProviderError("source.redirects", "the calendar address redirects too often")
        with response:
            if response.status_code == 304:
                return response, None
            if response.status_code in (401, 403):
                raise ProviderError(
                    "source.auth", f"the server refused access ({response.status_code})"
                )
            if response.status_code != 200:
                raise ProviderError("source.http", f"the server answered {response.status_code}")
            return response, _read_capped(response, max_bytes, too_large)
    except netguard.AddressBlocked:
        raise ProviderError("source.address_blocked", netguard.BLOCKED_MESSAGE) from None
    except requests.Timeout:
        raise ProviderError("source.timeout", "the server did not answer in time") from None
    except requests.RequestException as exc:
        raise ProviderError(
            "source.unreachable", f"could not reach it ({type(exc).__name__})"
        ) from None


def _same_origin_for_auth(old: SplitResult, new: SplitResult) -> bool:
    # As requests does: the same host and port, or an upgrade from http to https on the
    # default ports; anything else (another host, a downgrade) loses the credentials.
    if old.hostname != new.hostname:
        return False
    old_port = old.port or _DEFAULT_PORTS[old.scheme]
    new_port = new.port or _DEFAULT_PORTS[new.scheme]
    if (old.scheme, old_port) == (new.scheme, new_port):
        return True
    return (old.scheme, old_port, new.scheme, new_port) == ("http", 80, "https", 443)


def _read_capped(response: requests.Response, max_bytes: int, what: str) -> bytes:
    # The cap is applied to what arrives (after gzip), before it is all in memory.
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ProviderError(
                "ics.too_large", f"{what} is larger than {max_bytes // (1024 * 1024)} MB"
            )
        parts.append(chunk)
    return b"".join(parts)


def prepared_address(
    url: str, fields: Mapping[str, str], allowed_hosts: frozenset[str]
) -> Prepared:
    """A checked address with optional user name and password, sealed as secrets; only the
    scheme and host are shown (for every adapter that reads over HTTP)."""
    netguard.check_url(url, AddressPolicy(allowed_hosts))
    parts = urlsplit(url)
    secrets = {"url": url}
    username, password = fields.get("username", "").strip(), fields.get("password", "")
    if password and not username:
        raise ProviderError("source.url", "a password needs a user name")
    if username:
        secrets["username"] = username
    if password:
        secrets["password"] = password
    return Prepared(
        settings={"host": parts.hostname or ""},
        secrets=secrets,
        display=f"{parts.scheme}://{parts.hostname}/…",
    )


class IcsUrlAdapter:
    """A published iCalendar address as a synced source.

    Settings: ``url`` (secret: a calendar's private address is itself the key to it),
    optionally ``username`` and ``password`` for HTTP Basic. The cursor holds the ETag and
    Last-Modified of the last applied read. The whole feed is read whatever the window.
    """

    kind = ADAPTER

    def prepare(self, fields: Mapping[str, str], allowed_hosts: frozenset[str]) -> Prepared:
        return prepared_address(http_url(fields.get("url", "")), fields, allowed_hosts)

    def read(self, config: SourceConfig, window: Window, cursor: Mapping[str, str]) -> AdapterRead:
        url = config.secrets.get("url")
        if not url:
            raise ProviderError("source.secret", "the source has no address")
        username = config.secrets.get("username", "")
        fetched = fetch(
            url,
            default_zone=config.default_zone,
            max_bytes=config.max_bytes,
            etag=cursor.get("etag"),
            last_modified=cursor.get("last_modified"),
            timeout=config.timeout,
            policy=AddressPolicy(config.allowed_hosts),
            auth=(username, config.secrets.get("password", "")) if username else None,
        )
        new_cursor = {
            name: value
            for name, value in (("etag", fetched.etag), ("last_modified", fetched.last_modified))
            if value
        }
        return AdapterRead(fetched.read, new_cursor)
