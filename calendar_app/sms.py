"""Sending SMS: one small Protocol, a console sender for the embedded default, and one
error type. The Twilio sender is the only module that imports twilio."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from calendar_app.domain.phone import masked

log = logging.getLogger(__name__)


class SmsError(Exception):
    """The message was not accepted: ``permanent`` ones are never retried."""

    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Sent:
    """The gateway's id of an accepted message (a Twilio Message SID)."""

    sid: str


class SmsSender(Protocol):
    def send(self, to: str, body: str, *, validity_seconds: int | None = None) -> Sent:
        """Hand one message to the gateway; raise :class:`SmsError` if it is refused."""
        ...


class ConsoleSender:
    """Writes one log line per message (number masked, no text); used without Twilio."""

    def send(self, to: str, body: str, *, validity_seconds: int | None = None) -> Sent:
        sid = "CONSOLE" + secrets.token_hex(16)
        # The text is about someone's care: it stays in the outbox, not in the log.
        log.info("SMS to %s, %d characters (console sender, not sent)", masked(to), len(body))
        return Sent(sid)
