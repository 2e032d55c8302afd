"""Deterministic, realistic iCalendar test files: care bookings in Europe/Stockholm.

The same seed gives the same bytes, so runs on different days and machines measure the
same work. Events are mostly single visits on weekdays in office hours, with a few weekly
series (bounded by COUNT or UNTIL, some with EXDATE) and a few moved occurrences
(RECURRENCE-ID overrides), all with TZID-bound times and a VTIMEZONE.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TZID = "Europe/Stockholm"

VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Stockholm",
    "X-LIC-LOCATION:Europe/Stockholm",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]

VISITS = [
    "Återbesök diabetesmottagningen",
    "Provtagning (blodprov)",
    "Fysioterapi, knä",
    "Samtal med kurator",
    "Psykologsamtal",
    "Tandhygienist",
    "Läkarbesök, vårdcentral",
    "Uppföljning medicinering",
    "Arbetsterapeut, hembesök",
    "Logoped",
    "Sjuksköterskebesök, såromläggning",
    "Ögonmottagningen, kontroll",
    "Hörselvården, inprovning",
    "Röntgen, lungor",
    "Videobesök, BUP",
    "Telefonsamtal med distriktssköterska",
]
PLACES = [
    "Vårdcentralen Teleborg\\, Växjö",
    "Centrallasarettet Växjö\\, Entré A\\, plan 3",
    "Folktandvården Centrum\\, Storgatan 12\\, Växjö",
    "Rehabenheten\\, Sigfridsvägen 5\\, Växjö",
    "Hemmet",
    "Videolänk (Alltid öppet)",
    "Vuxenpsykiatrin\\, Hus 2\\, Växjö",
    "Ljungby lasarett\\, Ögonmottagningen",
]
PRACTITIONERS = [
    "Anna Lindqvist",
    "Erik Johansson",
    "Maria Nilsson",
    "Karin Svensson",
    "Lars Persson",
    "Sara Ekström",
    "Johan Berg",
    "Fatima Hassan",
    "Mikael Åberg",
    "Elin Öberg",
]
DESCRIPTIONS = [
    "Kom gärna tio minuter före utsatt tid. Ta med legitimation och aktuell läkemedelslista.",
    "Fastande från midnatt. Du får dricka vatten. Anmäl dig i receptionen vid ankomst.",
    "Om du får förhinder: avboka senast 24 timmar innan\\, annars debiteras en avgift.",
    "Besöket kan göras som videobesök om du hellre vill det. Ring mottagningen för att "
    "ändra.\\nTolk är bokad.",
    "Parkering finns vid entrén. Närmaste busshållplats: Lasarettet (linje 1\\, 3 och 4).",
    "Ta med glasögon och hörapparat om du använder sådana.\\nFrågor? Ring 0470-58 80 00.",
]
DURATIONS = [15, 30, 30, 30, 45, 45, 60, 60, 90]
NAMESPACE = "bench.personkalendern.example"


@dataclass(frozen=True)
class GeneratedFile:
    data: bytes
    vevents: int
    singles: int
    series: int
    overrides: int
    exdated_series: int


def fold(line: str) -> list[str]:
    """Fold a content line at 75 octets without splitting a UTF-8 character (RFC 5545 3.1)."""
    out: list[str] = []
    current, size, limit = [], 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append("".join(current))
            current, size, limit = [" "], 1, 75
        current.append(char)
        size += width
    out.append("".join(current))
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def _local(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _weekday_slot(rng: random.Random, first: date, days: int) -> datetime:
    while True:
        day = first + timedelta(days=rng.randrange(days))
        if day.weekday() < 5:
            break
    minutes = rng.randrange(8 * 4, 16 * 4) * 15  # 08:00 .. 15:45, quarter hours
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=STOCKHOLM)


def _common(rng: random.Random, uid: str, stamp: datetime) -> list[str]:
    lines = [
        f"UID:{uid}",
        f"DTSTAMP:{_utc(stamp)}",
        f"SUMMARY:{_escape(rng.choice(VISITS))}",
        f"LOCATION:{rng.choice(PLACES)}",
        f"DESCRIPTION:{rng.choice(DESCRIPTIONS)} {rng.choice(DESCRIPTIONS)}",
        f"ORGANIZER;CN={rng.choice(PRACTITIONERS)}:mailto:reception@{NAMESPACE}",
    ]
    if rng.random() < 0.3:
        lines.append(f"LAST-MODIFIED:{_utc(stamp - timedelta(days=rng.randrange(1, 60)))}")
    if rng.random() < 0.02:
        lines.append("STATUS:CANCELLED")
    else:
        lines.append("STATUS:CONFIRMED")
    return lines


def _times(start: datetime, minutes: int) -> list[str]:
    end = start + timedelta(minutes=minutes)
    return [f"DTSTART;TZID={TZID}:{_local(start)}", f"DTEND;TZID={TZID}:{_local(end)}"]


def care_bookings(
    total: int,
    *,
    seed: int,
    first_day: date,
    days: int = 365,
    series_share: float = 0.03,
    override_share: float = 0.01,
    uid_prefix: str = "bk",
) -> GeneratedFile:
    """An iCalendar file with ``total`` VEVENTs (singles, weekly series and overrides)."""
    rng = random.Random(seed)
    stamp = datetime(2025, 12, 15, 8, 0, tzinfo=UTC)
    n_series = max(1, round(total * series_share))
    n_overrides = max(1, round(total * override_share))
    n_singles = total - n_series - n_overrides
    events: list[list[str]] = []
    moveable: list[tuple[str, datetime, int]] = []  # (uid, occurrence start, minutes)
    exdated = 0
    for index in range(n_series):
        uid = f"{uid_prefix}-series-{index:05d}@{NAMESPACE}"
        start = _weekday_slot(rng, first_day, max(1, days - 120))
        minutes = rng.choice(DURATIONS)
        weeks = rng.randrange(4, 16)
        if rng.random() < 0.5:
            rule = f"RRULE:FREQ=WEEKLY;COUNT={weeks}"
        else:
            last = start + timedelta(weeks=weeks - 1)
            until = datetime.combine(last.date(), time(23, 59, 59), tzinfo=STOCKHOLM)
            rule = f"RRULE:FREQ=WEEKLY;UNTIL={_utc(until)}"
        body = [*_common(rng, uid, stamp), *_times(start, minutes), rule]
        skipped = None
        if rng.random() < 0.15:
            skipped = start + timedelta(weeks=rng.randrange(1, weeks))
            body.append(f"EXDATE;TZID={TZID}:{_local(skipped)}")
            exdated += 1
        events.append(body)
        moveable.extend(
            (uid, start + timedelta(weeks=k), minutes)
            for k in range(1, weeks)
            if start + timedelta(weeks=k) != skipped
        )
    for uid, original, minutes in rng.sample(moveable, n_overrides):
        moved = original + timedelta(days=rng.choice([-1, 1, 2]), hours=rng.choice([-1, 0, 2]))
        events.append(
            [
                *_common(rng, uid, stamp),
                *_times(moved, minutes),
                f"RECURRENCE-ID;TZID={TZID}:{_local(original)}",
                "SEQUENCE:1",
            ]
        )
    for index in range(n_singles):
        uid = f"{uid_prefix}-{index:06d}@{NAMESPACE}"
        start = _weekday_slot(rng, first_day, days)
        events.append([*_common(rng, uid, stamp), *_times(start, rng.choice(DURATIONS))])
    rng.shuffle(events)

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Region Kronoberg//1177 Tidbok export//SV",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Mina vårdbesök",
        *VTIMEZONE,
    ]
    for body in events:
        lines.append("BEGIN:VEVENT")
        for line in body:
            lines.extend(fold(line))
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return GeneratedFile(
        data=("\r\n".join(lines) + "\r\n").encode(),
        vevents=len(events),
        singles=n_singles,
        series=n_series,
        overrides=n_overrides,
        exdated_series=exdated,
    )
