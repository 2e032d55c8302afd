"""The Twilio sender: the only module that imports twilio.

Permanent refusals (21211 invalid number, 21610 the recipient sent STOP, 21614 not a
mobile number, and other 4xx) are never retried; 429, 5xx and network errors are.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

__all__ = ["MessagingResponse", "TwilioSender", "TwilioSettings", "valid_signature"]

from calendar_app.sms import Sent, SmsError

PERMANENT_CODES = {21211, 21610, 21614}
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str = ""  # a number, or an alphanumeric sender (then no replies)
    messaging_service_sid: str = ""
    api_base_url: str = ""  # empty: Twilio's own; tests and staging point elsewhere
    status_callback: str = ""  # our public URL for delivery reports


class TwilioSender:
    """Sends through Twilio's Messages API with the official client."""

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        # A non-empty environment: the client must not pick up TWILIO_* from the shell.
        self.client = Client(
            settings.account_sid,
            settings.auth_token,
            environment={"TWILIO_ENV": "personkalendern"},
            http_client=TwilioHttpClient(timeout=TIMEOUT_SECONDS),
        )
        if settings.api_base_url:
            self.client.api.base_url = settings.api_base_url.rstrip("/")

    def send(self, to: str, body: str, *, validity_seconds: int | None = None) -> Sent:
        options: dict[str, object] = {"to": to, "body": body}
        if self.settings.messaging_service_sid:
            options["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            options["from_"] = self.settings.from_number
        if validity_seconds is not None:
            options["validity_period"] = max(1, min(validity_seconds, 36_000))
        if self.settings.status_callback:
            options["status_callback"] = self.settings.status_callback
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as exc:
            code = exc.code or exc.status
            permanent = code in PERMANENT_CODES or (400 <= exc.status < 500 and exc.status != 429)
            raise SmsError(str(code), str(exc.msg), permanent=permanent) from None
        except (TwilioException, OSError) as exc:
            raise SmsError("network", type(exc).__name__, permanent=False) from None
        return Sent(str(message.sid))


def valid_signature(auth_token: str, url: str, params: dict[str, str], signature: str) -> bool:
    """Whether a webhook request really comes from Twilio (X-Twilio-Signature)."""
    return bool(RequestValidator(auth_token).validate(url, params, signature))
