"""A real Radicale CalDAV server on 127.0.0.1 for the tests, and plain-HTTP helpers to put
calendars and events on it (MKCALENDAR, PUT, DELETE), so the adapter under test is the only
CalDAV client involved."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.oidc_broker import free_port

USER, PASSWORD = "alva", "hemligt"
_STARTUP_SECONDS = 15.0

_MKCALENDAR = b"""<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>%s</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"""

_ADDRESS_BOOK = b"""<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
  </D:prop></D:set>
</D:mkcol>"""


@dataclass
class Radicale:
    """A running server: its base URL, one user's home, and helpers to change its data."""

    base: str
    http: requests.Session

    @property
    def home(self) -> str:
        return f"{self.base}/{USER}/"

    def make_calendar(self, name: str | None = None) -> str:
        """Create a new, empty calendar collection; its URL (with a trailing slash)."""
        name = name or f"cal-{uuid.uuid4().hex[:8]}"
        url = f"{self.home}{name}/"
        response = self.http.request(
            "MKCALENDAR", url, data=_MKCALENDAR % name.encode(), headers=_XML
        )
        assert response.status_code == 201, response.status_code
        return url

    def make_address_book(self, name: str) -> str:
        """A CardDAV collection: a collection, but not a calendar."""
        url = f"{self.home}{name}/"
        response = self.http.request("MKCOL", url, data=_ADDRESS_BOOK, headers=_XML)
        assert response.status_code == 201, response.status_code
        return url

    def put(self, calendar_url: str, name: str, ics: bytes) -> None:
        """Create or replace the object ``name`` (e.g. ``visit.ics``) in a calendar."""
        response = self.http.put(
            calendar_url + name,
            data=ics,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert response.status_code in (201, 204), response.status_code

    def delete(self, calendar_url: str, name: str) -> None:
        response = self.http.delete(calendar_url + name)
        assert response.status_code in (200, 204), response.status_code


_XML = {"Content-Type": "application/xml; charset=utf-8"}


def _config(folder: Path, port: int) -> Path:
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    config = folder / "config"
    config.write_text(
        "\n".join(
            [
                "[server]",
                f"hosts = 127.0.0.1:{port}",
                "[auth]",
                "type = htpasswd",
                f"htpasswd_filename = {users}",
                "htpasswd_encryption = plain",
                "delay = 0",
                "[rights]",
                "type = owner_only",
                "[storage]",
                f"filesystem_folder = {folder / 'collections'}",
                "[web]",
                "type = none",
                "[logging]",
                "level = warning",
                "",
            ]
        )
    )
    return config


def _wait_until_up(process: subprocess.Popen[bytes], base: str) -> None:
    ends = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < ends:
        if process.poll() is not None:
            raise RuntimeError(f"radicale exited with {process.returncode}")
        try:
            requests.options(base + "/", timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("radicale did not start in time")


@pytest.fixture(scope="session", name="radicale")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Start Radicale (htpasswd, one user) in a subprocess for the whole test session."""
    folder = tmp_path_factory.mktemp("radicale")
    port = free_port()
    config = _config(folder, port)
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.auth = (USER, PASSWORD)
    http.trust_env = False
    try:
        _wait_until_up(process, base)
        yield Radicale(base=base, http=http)
    finally:
        http.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
