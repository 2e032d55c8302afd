"""Swedish personal identity numbers (personnummer) and coordination numbers.

Written by hand because the rules are short and exact, and because the century of a
YYMMDD form depends on "today", which must be an argument here (the PyPI package reads
the system clock and accepts more spellings than we want).
"""

from __future__ import annotations

import re
from datetime import date

from calendar_app.domain.errors import DomainError

_FORMS = re.compile(r"^(?:(\d{2})?(\d{6})([-+]?)(\d{4}))$")


def luhn_ok(digits: str) -> bool:
    """Return whether ``digits`` passes the Luhn check (weights 2,1,2,1... from the left)."""
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def parse(text: str, *, today: date) -> str:
    """Return the 12-digit form of a personnummer or samordningsnummer, or raise.

    Accepts YYYYMMDD-XXXX, YYYYMMDDXXXX, YYMMDD-XXXX and YYMMDD+XXXX ("+" for people who
    are 100 or older). The error never repeats the number.
    """
    match = _FORMS.match(text.strip())
    if not match:
        raise DomainError(
            "personnummer.format",
            "write the personnummer as YYYYMMDD-XXXX, YYYYMMDDXXXX, YYMMDD-XXXX or YYMMDD+XXXX",
        )
    century, yymmdd, sep, tail = match.groups()
    if century is not None and sep == "+":
        raise DomainError("personnummer.format", "'+' is used only with a six-digit date")
    if century is None:
        yy = int(yymmdd[:2])
        year = (today.year // 100) * 100 + yy
        if year > today.year:
            year -= 100
        if sep == "+":
            year -= 100
        century = str(year // 100)
    full = century + yymmdd + tail
    if not luhn_ok(full[2:]):
        raise DomainError("personnummer.checksum", "the personnummer's check digit is wrong")
    year, month, day = int(full[:4]), int(full[4:6]), int(full[6:8])
    if day > 60:  # samordningsnummer: the day plus 60
        day -= 60
    try:
        born = date(year, month, day)
    except ValueError:
        raise DomainError("personnummer.date", "the personnummer holds no valid date") from None
    if born > today:
        raise DomainError("personnummer.date", "the personnummer's date lies in the future")
    return full


def masked(pnr12: str) -> str:
    """Return a form safe for logs and screens: the birth date and '-****'."""
    return f"{pnr12[:8]}-****"
