"""Mobile numbers in E.164, parsed with ``phonenumbers`` (Swedish numbers by default)."""

from __future__ import annotations

import phonenumbers

from calendar_app.domain.errors import DomainError


def to_e164(text: str, *, region: str = "SE") -> str:
    """Return ``text`` as an E.164 number, or raise ``phone.invalid``."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise DomainError("phone.invalid", "the phone number could not be read") from None
    if not phonenumbers.is_valid_number(number):
        raise DomainError("phone.invalid", "the phone number is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def masked(e164: str) -> str:
    """Return the number with all but the last two digits hidden, for logs."""
    return e164[:3] + "*" * max(len(e164) - 5, 0) + e164[-2:]
