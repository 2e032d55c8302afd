"""Reminder texts in Swedish, kept to one SMS segment where possible. Pure: no I/O.

Segment counting is written here by hand: it is the GSM 03.38 arithmetic (160 septets in
one segment, 153 per part when split, escaped characters count twice, anything outside the
alphabet turns the whole message into UCS-2 with 70/67), and no maintained Python library
offers just that without also being an SMS gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# GSM 03.38 basic alphabet (å, ä, ö, é, ü are in it) and the extension table (2 septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")
# What phones and our own templates put in that GSM cannot carry, and its GSM stand-in.
_PLAIN = str.maketrans(
    {"–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "\u00a0": " "}
)

WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
MONTHS = ("jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec")
NEUTRAL_UNIT = "din vårdgivare"


@dataclass(frozen=True)
class Segments:
    """How a text travels: the encoding and the number of SMS parts it costs."""

    encoding: str  # "GSM-7" or "UCS-2"
    count: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2


def segments(text: str) -> Segments:
    """The encoding and the number of segments ``text`` needs."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, count, units)


def plain(text: str) -> str:
    """``text`` with typographic characters replaced by their GSM-7 stand-ins."""
    return text.translate(_PLAIN)


@dataclass(frozen=True)
class VisitLine:
    """What a reminder may say about one visit (already filtered for privacy)."""

    start: datetime
    unit: str  # the unit's name, or NEUTRAL_UNIT for a sensitive unit
    place: str = ""  # empty for a protected person or a phone/video visit
    mode: str = "in_person"
    interpreter: bool = False
    unit_phone: str = ""
    cancellation: str = ""
    all_day: bool = False


@dataclass(frozen=True)
class Message:
    text: str
    segments: Segments
    dropped: tuple[str, ...] = field(default_factory=tuple)


def _when(start: datetime, zone: ZoneInfo, *, with_day: bool, all_day: bool) -> str:
    local = start.astimezone(zone)
    day = f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]}"
    if all_day:
        return f"{day} (hela dagen)"
    clock = f"kl. {local:%H.%M}"
    return f"{day} {clock}" if with_day else clock


def compose(
    visits: list[VisitLine],
    *,
    zone: ZoneInfo,
    link: str = "",
    for_name: str = "",
    transport: bool = False,
    cancelled: bool = False,
) -> Message:
    """One reminder for one or more visits on one day; optional details are dropped, least
    important first, until it fits one segment (what was dropped is reported)."""
    optional = ["cancellation", "unit_phone", "interpreter", "link", "place"]
    dropped: list[str] = []
    while True:
        head = "Inställt" if cancelled else ("Boka resa" if transport else "Påminnelse")
        text = plain(_render(visits, zone, link, for_name, head, set(dropped)))
        counted = segments(text)
        if counted.count == 1 or not optional:
            return Message(text, counted, tuple(dropped))
        dropped.append(optional.pop(0))


def _render(
    visits: list[VisitLine],
    zone: ZoneInfo,
    link: str,
    for_name: str,
    head: str,
    dropped: set[str],
) -> str:
    if for_name:
        head += f" för {for_name}"
    several = len(visits) > 1
    lines = []
    for visit in visits:
        parts = [visit.unit]
        if visit.mode == "phone":
            parts.append("telefonbesök")
        elif visit.mode == "video":
            parts.append("videobesök")
        elif visit.place and "place" not in dropped:
            parts.append(visit.place)
        if visit.interpreter and "interpreter" not in dropped:
            parts.append("tolk bokad")
        if visit.unit_phone and "unit_phone" not in dropped:
            parts.append(f"tel {visit.unit_phone}")
        if visit.cancellation and "cancellation" not in dropped:
            parts.append(visit.cancellation)
        when = _when(visit.start, zone, with_day=not several, all_day=visit.all_day)
        lines.append(f"{when} {', '.join(parts)}")
    if several:
        day = _when(visits[0].start, zone, with_day=True, all_day=True).removesuffix(
            " (hela dagen)"
        )
        body = f"{head} {day}: " + "; ".join(lines) + "."
    else:
        body = f"{head}: {lines[0]}."
    if link and "link" not in dropped:
        body += f" {link}"
    return body
