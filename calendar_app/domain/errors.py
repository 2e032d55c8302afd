"""The one error type the domain raises: a stable code plus a message for people."""

from __future__ import annotations


class DomainError(Exception):
    """Bad input, with a stable ``code`` for the API/CLI and a human ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
