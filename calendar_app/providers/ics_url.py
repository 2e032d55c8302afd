"""The ICS/webcal URL adapter: a published calendar fetched over HTTP(S).

Conditional GET (ETag / If-Modified-Since) so an unchanged calendar costs one 304; a
timeout, a size cap read while streaming, at most a few redirects, gzip as the server
sends it. Anything that is not a whole calendar raises :class:`ProviderError` and stores
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from calendar_app.domain.bookings import ReadResult
from calendar_app.providers import ProviderError, ics

ADAPTER = "ics_url"
MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 20.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    """A fetch: the calendar read, or ``read`` None when the server said 304."""

    read: ReadResult | None
    etag: str | None
    last_modified: str | None


def http_url(url: str) -> str:
    """``webcal://`` as https; anything but http(s) is refused."""
    url = url.strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("source.url", "the calendar address must be an http(s) or webcal URL")
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
) -> Fetched:
    """Fetch and parse the calendar at ``url`` unless it is unchanged since the last read."""
    client = session or requests.Session()
    headers = {"Accept": "text/calendar, */*;q=0.1", "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    target = http_url(url)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = client.get(
                target, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            )
            if response.is_redirect and "location" in response.headers:
                target = http_url(urljoin(target, response.headers["location"]))
                response.close()
                continue
            break
        else:
            raise ProviderError("source.redirects", "the calendar address redirects too often")
        with response:
            if response.status_code == 304:
                return Fetched(None, etag, last_modified)
            if response.status_code != 200:
                raise ProviderError("source.http", f"the server answered {response.status_code}")
            body = _read_capped(response, max_bytes)
    except requests.Timeout:
        raise ProviderError("source.timeout", "the server did not answer in time") from None
    except requests.RequestException as exc:
        raise ProviderError(
            "source.unreachable", f"could not reach it ({type(exc).__name__})"
        ) from None
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/html" or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        raise ProviderError("source.not_calendar", "the address gives a web page, not a calendar")
    return Fetched(
        ics.parse(body, default_zone=default_zone, max_bytes=max_bytes),
        response.headers.get("etag"),
        response.headers.get("last-modified"),
    )


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    # The cap is applied to what arrives (after gzip), before it is all in memory.
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ProviderError(
                "ics.too_large", f"the calendar is larger than {max_bytes // (1024 * 1024)} MB"
            )
        parts.append(chunk)
    return b"".join(parts)
