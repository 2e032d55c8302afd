"""The dates a client may ask about. Pure: no Flask, database or HTTP here.

Wider than any real question about a calendar (events are read from 1900 to 2199), narrow
enough that the date arithmetic behind a page, the API or the command line (the week around
a day, a day's margins, the day after a range) cannot overflow.
"""

from __future__ import annotations

from datetime import date

from calendar_app.domain.errors import DomainError

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2200, 12, 31)


def client_day(day: date, name: str) -> date:
    """``day`` as sent by a client, if it lies in the years 1900-2200 (``date.out_of_range``
    if not: year 1 or 9999 would overflow the arithmetic around it)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise DomainError("date.out_of_range", f"'{name}' must be a date in the years 1900-2200")
    return day
