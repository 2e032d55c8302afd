"""A subscribable calendar feed: our own events rendered as RFC 5545 / RFC 7986 iCalendar.

Pure: the service decides what each event may show; this module only writes it. The bytes
depend on nothing but the arguments (DTSTAMP is the event's last change, not the time of
rendering), so the same calendar always renders to the same bytes and its ETag is stable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//Personkalendern//Kalenderflode//SV"
# How often clients should fetch again (RFC 7986 REFRESH-INTERVAL; X-PUBLISHED-TTL is the
# older name Apple and Outlook read).
REFRESH = timedelta(hours=1)
# Our UIDs: a UUID made from our own row id and the occurrence, in a namespace of our own,
# so a UID says nothing of the person, the unit or the provider's booking.
UID_NAMESPACE = uuid.UUID("0b7f6a1e-3c52-4d0e-9a51-2f6c8e4d7b10")

TEXTS = {
    "sv": {
        "busy": "Upptagen",
        "visit": "Besök: {unit}",
        "neutral_unit": "din vårdgivare",
        "unit": "Mottagning: {unit}",
        "practitioner": "Träffar: {name}",
        "phone": "Telefonbesök: de ringer dig.",
        "video": "Videobesök.",
        "interpreter": "Tolk: {language}",
        "interpreter_unknown": "Tolk är bokad.",
        "transport": "Resa behöver bokas.",
        "cancellation": "Avbokning: {terms}",
        "fee": "Avgift: {fee}",
        "call": "Telefon till mottagningen: {phone}",
        "cancelled": "INSTÄLLT: {title}",
        "alarm": "Påminnelse: {title}",
    },
    "en": {
        "busy": "Busy",
        "visit": "Visit: {unit}",
        "neutral_unit": "your care provider",
        "unit": "Unit: {unit}",
        "practitioner": "You will meet: {name}",
        "phone": "Phone appointment: they will call you.",
        "video": "Video appointment.",
        "interpreter": "Interpreter: {language}",
        "interpreter_unknown": "An interpreter is booked.",
        "transport": "Transport needs to be booked.",
        "cancellation": "Cancellation: {terms}",
        "fee": "Fee: {fee}",
        "call": "Phone number of the unit: {phone}",
        "cancelled": "CANCELLED: {title}",
        "alarm": "Reminder: {title}",
    },
}


def texts(locale: str) -> dict[str, str]:
    """The feed's words in ``locale`` (Swedish unless English is asked for)."""
    return TEXTS.get(locale, TEXTS["sv"])


def feed_uid(booking_id: int, recurrence_key: str) -> str:
    """The stable UID of one occurrence: the same in every render and every feed."""
    return str(uuid.uuid5(UID_NAMESPACE, f"{booking_id}/{recurrence_key}"))


@dataclass(frozen=True)
class FeedEvent:
    """One occurrence as a feed shows it; the service has already hidden what it may not.

    Timed events have aware ``start``/``end``; all-day events have ``start_date`` and
    ``end_date`` instead. ``alarms_before`` are how long before the start each alarm rings.
    """

    uid: str
    start: datetime | None
    end: datetime | None
    start_date: date | None
    end_date: date | None
    summary: str
    location: str
    description: str
    status: str  # confirmed, tentative or cancelled
    sequence: int
    changed: datetime  # aware UTC: DTSTAMP and LAST-MODIFIED
    transparent: bool = False
    alarms_before: tuple[timedelta, ...] = ()


@dataclass(frozen=True)
class FeedCalendar:
    """The calendar around the events: its name and the zone its times are written in."""

    name: str
    zone: ZoneInfo
    locale: str = "sv"


def render(calendar: FeedCalendar, events: list[FeedEvent]) -> bytes:
    """The feed as iCalendar bytes, with a VTIMEZONE for the zone of its times."""
    ical = icalendar.Calendar()
    ical.add("PRODID", PRODID)
    ical.add("VERSION", "2.0")
    ical.add("CALSCALE", "GREGORIAN")
    ical.add("NAME", calendar.name)
    ical.add("X-WR-CALNAME", calendar.name)
    ical.add("X-WR-TIMEZONE", calendar.zone.key)
    ical.add("REFRESH-INTERVAL", REFRESH, parameters={"VALUE": "DURATION"})
    ical.add("X-PUBLISHED-TTL", "PT1H")  # icalendar would write an unknown X- name as text
    words = texts(calendar.locale)
    first: date | None = None
    last: date | None = None
    for event in events:
        ical.add_component(_vevent(event, calendar.zone, words))
        day = event.start_date or (event.start.date() if event.start else None)
        end_day = event.end_date or (event.end.date() if event.end else None)
        if day is not None and end_day is not None:
            first = day if first is None else min(first, day)
            last = end_day if last is None else max(last, end_day)
    if first is not None and last is not None:
        # The VTIMEZONE's rules need to cover only the dates the feed holds.
        ical.add_missing_timezones(first - timedelta(days=1), last + timedelta(days=1))
    return ical.to_ical()


def _vevent(event: FeedEvent, zone: ZoneInfo, words: dict[str, str]) -> icalendar.Event:
    vevent = icalendar.Event()
    changed = event.changed.astimezone(UTC).replace(microsecond=0)
    vevent.add("UID", event.uid)
    vevent.add("DTSTAMP", changed)
    vevent.add("LAST-MODIFIED", changed)
    vevent.add("SEQUENCE", event.sequence)
    if event.start is not None and event.end is not None:
        vevent.add("DTSTART", event.start.astimezone(zone))
        vevent.add("DTEND", event.end.astimezone(zone))
    else:
        vevent.add("DTSTART", event.start_date)
        vevent.add("DTEND", event.end_date)
    vevent.add("SUMMARY", event.summary)
    if event.location:
        vevent.add("LOCATION", event.location)
    if event.description:
        vevent.add("DESCRIPTION", event.description)
    vevent.add("STATUS", event.status.upper())
    vevent.add("TRANSP", "TRANSPARENT" if event.transparent else "OPAQUE")
    vevent.add("CLASS", "PRIVATE")
    if event.status != "cancelled":
        for before in event.alarms_before:
            alarm = icalendar.Alarm()
            alarm.add("ACTION", "DISPLAY")
            alarm.add("DESCRIPTION", words["alarm"].format(title=event.summary))
            alarm.add("TRIGGER", -before)
            vevent.add_component(alarm)
    return vevent
