"""A fake SMS gateway for the dispatch tests (Twilio itself is tested in test_twilio)."""

from __future__ import annotations

import secrets
import threading

from calendar_app.sms import Sent, SmsError


class FakeSender:
    """Records what it is given; answers an error for the numbers told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int | None]] = []
        self.errors: dict[str, SmsError] = {}
        self.lock = threading.Lock()

    def send(self, to: str, body: str, *, validity_seconds: int | None = None) -> Sent:
        if to in self.errors:
            raise self.errors[to]
        with self.lock:
            self.sent.append((to, body, validity_seconds))
            return Sent("SM" + secrets.token_hex(16))
