"""Adapters that translate provider systems into our own dataclasses.

Each adapter lives in its own module and raises only :class:`ProviderError`; what it
returns is :class:`calendar_app.domain.bookings.ReadResult`, never a library's objects.
"""

from __future__ import annotations

from collections.abc import Callable

from calendar_app.domain.bookings import ReadResult


class ProviderError(Exception):
    """A read failed as a whole: nothing from it may be stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


FileParser = Callable[..., ReadResult]


def file_parsers() -> dict[str, FileParser]:
    """The registry of adapters that read an uploaded file, by adapter name."""
    from calendar_app.providers import ics

    return {"ics": ics.parse}
