"""Adapters that translate provider systems into our own dataclasses.

Each adapter lives in its own module and raises only :class:`ProviderError`; what it
returns is :class:`calendar_app.domain.bookings.ReadResult`, never a library's objects.
Synced adapters implement :class:`Adapter` and are listed in
:mod:`calendar_app.providers.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from calendar_app.domain.bookings import ReadResult


class ProviderError(Exception):
    """A read failed as a whole: nothing from it may be stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Window:
    """The time range a read is asked for; adapters of whole feeds may return more."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class SourceConfig:
    """Everything an adapter is given to read one source."""

    settings: Mapping[str, str]  # the source's public settings
    secrets: Mapping[str, str]  # unsealed secrets, and credentials from the environment
    default_zone: str  # the person's zone, for floating times
    max_bytes: int
    timeout: float
    allowed_hosts: frozenset[str] = frozenset()  # private addresses an administrator allowed
    # The person's, for systems that find a patient by it; never shown, logged or in a URL.
    personnummer: str = field(default="", repr=False)
    # The service's own settings some adapters need (RIVTA_WSDL, RIVTA_CLIENT_CERT, …).
    service_settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A new source's settings, checked: what may be shown, and what must be sealed."""

    settings: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    display: str = ""  # a safe one-line description, e.g. the host of a URL


@dataclass(frozen=True)
class AdapterRead:
    """One read: ``read`` is None when the system said nothing changed since ``cursor``."""

    read: ReadResult | None
    cursor: Mapping[str, str] = field(default_factory=dict)


class Adapter(Protocol):
    """A provider system read on a schedule."""

    kind: str

    def prepare(self, fields: Mapping[str, str], allowed_hosts: frozenset[str]) -> Prepared:
        """Check what a user entered for a new source; raise ProviderError if unusable."""
        ...

    def read(self, config: SourceConfig, window: Window, cursor: Mapping[str, str]) -> AdapterRead:
        """Read the source; raise ProviderError (and only that) if the read failed."""
        ...


FileParser = Callable[..., ReadResult]


def file_parsers() -> dict[str, FileParser]:
    """The registry of adapters that read an uploaded file, by adapter name."""
    from calendar_app.providers import ics

    return {"ics": ics.parse}
