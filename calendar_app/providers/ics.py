"""The iCalendar (RFC 5545) adapter: bytes of a file or feed -> :class:`ReadResult`.

Parsing is done by ``icalendar``, X-WR-TIMEZONE by ``x-wr-timezone`` and recurrence by
``recurring-ical-events``; this module decides what is usable and normalises it:
floating times take the person's zone, Windows and vendor TZIDs become IANA zones, a
zone known only from a custom VTIMEZONE is converted to UTC.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import x_wr_timezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from calendar_app.domain.bookings import IncomingBooking, ReadResult, SkippedEvent
from calendar_app.domain.recurrence import (
    MAX_STEPS_PER_IMPORT,
    Budget,
    OverBudget,
    recurrence_key,
    series_extent,
)
from calendar_app.providers import ProviderError

ADAPTER = "ics"
# Properties without which an event's time cannot be trusted; a broken one (or an
# unparsable content line, reported with no name) makes the event damaged.
ESSENTIAL = {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", None}
# Care visits do not repeat by the hour; such rules (often fuzzer output) could make an
# expansion run for a very long time, so they are refused.
TOO_FREQUENT = {"SECONDLY", "MINUTELY", "HOURLY"}
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
SERIES_SCAN_LIMIT = 1000
METHODS = {None, "PUBLISH", "REQUEST", "CANCEL"}
STATUSES = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}
MODES = {"in_person", "phone", "video"}


class _Skip(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse(data: bytes, *, default_zone: str, max_bytes: int | None = None) -> ReadResult:
    """Read an iCalendar file; raise :class:`ProviderError` if the file as a whole is bad."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ProviderError(
            "ics.too_large", f"the file is larger than {max_bytes // (1024 * 1024)} MB"
        )
    text = _decode(data).lstrip()
    if not text:
        raise ProviderError("ics.empty", "the file is empty")
    if not text[:6].upper().startswith("BEGIN:"):
        if text.startswith("<"):
            raise ProviderError("ics.not_calendar", "the file is a web page (HTML), not a calendar")
        raise ProviderError("ics.not_calendar", "the file is not an iCalendar file")
    zone = ZoneInfo(default_zone)
    with warnings.catch_warnings():
        # icalendar warns when it maps a vendor TZID such as /mozilla.org/.../Europe/Berlin
        # to its IANA zone; that mapping is what we want.
        warnings.simplefilter("ignore")
        try:
            components = icalendar.Calendar.from_ical(text, multiple=True)
        except Exception as exc:  # icalendar raises many exception types for broken input
            raise ProviderError(
                "ics.damaged", f"the file could not be read as iCalendar ({_short(exc)})"
            ) from None
        return _read_calendars(components, zone, Budget(MAX_STEPS_PER_IMPORT))


def _decode(data: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise ProviderError("ics.encoding", "the file's text encoding is broken") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Old Outlook exports are Windows-1252 without saying so.
        return data.decode("cp1252", errors="replace")


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return (text[:120] + "...") if len(text) > 120 else text or type(exc).__name__


def _method(calendar: icalendar.Component) -> str | None:
    value = calendar.get("METHOD")
    text = str(value).strip().upper() if value is not None else ""
    return text or None


def _read_calendars(
    components: Sequence[icalendar.Component], zone: ZoneInfo, budget: Budget
) -> ReadResult:
    if not components:
        raise ProviderError("ics.damaged", "the file holds no complete VCALENDAR object")
    if any(c.name != "VCALENDAR" for c in components):
        raise ProviderError("ics.no_calendar", "the file holds data outside a VCALENDAR object")
    methods = {_method(c) for c in components}
    if len(methods) > 1:
        raise ProviderError("ics.mixed_methods", "the file mixes calendars with different METHODs")
    method = methods.pop()
    if method not in METHODS:
        raise ProviderError("ics.method_unsupported", f"METHOD:{method} does not publish bookings")
    found: dict[tuple[str, str], IncomingBooking] = {}
    skipped: list[SkippedEvent] = []
    for calendar in components:
        for event in _standardised_events(calendar):
            uid = _uid(event)
            try:
                booking = _read_event(event, uid, zone, budget)
            except _Skip as skip:
                skipped.append(SkippedEvent(uid=uid, code=skip.code, reason=skip.reason))
                continue
            except Exception as exc:  # a library error inside one event damages only it
                skipped.append(SkippedEvent(uid=uid, code="event.damaged", reason=_short(exc)))
                continue
            earlier = found.get(booking.identity)
            if earlier is None or _newer(booking, earlier):
                found[booking.identity] = booking
    return ReadResult(
        bookings=tuple(found.values()),
        skipped=tuple(skipped),
        complete=method in (None, "PUBLISH"),
        cancel_only=method == "CANCEL",
    )


def _newer(a: IncomingBooking, b: IncomingBooking) -> bool:
    stamp_a = a.last_modified_utc or EARLIEST
    stamp_b = b.last_modified_utc or EARLIEST
    return (a.sequence, stamp_a) >= (b.sequence, stamp_b)


def _standardised_events(calendar: icalendar.Component) -> Iterable[icalendar.Component]:
    """The calendar's VEVENTs, with X-WR-TIMEZONE applied where the calendar has one."""
    events = calendar.walk("VEVENT")
    if "X-WR-TIMEZONE" not in calendar:
        return events
    try:
        return x_wr_timezone.to_standard(calendar).walk("VEVENT")
    except Exception:  # one broken event can stop the whole conversion: do it one by one
        result = []
        for event in events:
            single = icalendar.Calendar()
            single["X-WR-TIMEZONE"] = calendar["X-WR-TIMEZONE"]
            single.add_component(event)
            try:
                result.extend(x_wr_timezone.to_standard(single).walk("VEVENT"))
            except Exception:
                result.append(event)  # judged (and most likely skipped) by _read_event
        return result


def _uid(event: icalendar.Component) -> str:
    uid = str(event.get("UID") or "").strip()
    if uid:
        return uid[:255]
    # RFC 5545 requires a UID, but Apple iCal and others wrote files without; derive a
    # stable one from what identifies the event in the file.
    basis = "|".join(
        str(value.to_ical() if value is not None else "")
        for value in (_first(event.get(name)) for name in ("DTSTART", "SUMMARY", "RECURRENCE-ID"))
    )
    return "derived-" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def _read_event(event: Any, uid: str, zone: ZoneInfo, budget: Budget) -> IncomingBooking:
    broken = sorted({str(name) for name, _msg in event.errors if name in ESSENTIAL})
    if broken:
        raise _Skip("event.damaged", "unreadable " + ", ".join(broken))
    if "DTSTART" not in event:
        raise _Skip("event.no_start", "the event has no DTSTART")
    start = _normalise(event["DTSTART"], zone)
    all_day = not isinstance(start, datetime)
    raw_start = event["DTSTART"].dt
    floating_zone: tzinfo = zone
    if isinstance(raw_start, datetime) and raw_start.tzinfo is not None:
        floating_zone = raw_start.tzinfo  # a floating DTEND/RDATE/EXDATE takes DTSTART's zone
    end = _end(event, start, floating_zone)
    if type(end) is not type(start):
        raise _Skip("event.damaged", "DTSTART and DTEND are of different value types")
    if all_day and end == start:
        # DTEND equal to a DATE DTSTART is invalid; calendar clients show one day.
        end = start + timedelta(days=1)
    if end < start:
        raise _Skip("event.end_before_start", "the event ends before it starts")

    # An empty "RRULE:" line (seen in holiday feeds) is no rule at all.
    rrules = [rule for rule in _as_list(event.get("RRULE")) if rule]
    for rule in rrules:
        freq = (rule.get("FREQ") or [""])[0]
        if not freq:
            raise _Skip("event.rrule_invalid", "the repeat rule has no FREQ")
        if str(freq).upper() in TOO_FREQUENT:
            raise _Skip("event.rrule_too_frequent", f"repeats {str(freq).lower()}")
    rdates = _date_list(event, "RDATE", floating_zone)
    exdates = _date_list(event, "EXDATE", floating_zone)
    rid_prop = event.get("RECURRENCE-ID")
    rid = _normalise(rid_prop, floating_zone) if rid_prop is not None else None
    this_and_future = bool(
        rid_prop is not None and str(rid_prop.params.get("RANGE", "")).upper() == "THISANDFUTURE"
    )

    start_utc, end_utc = _instants(start, end, zone)
    if not (EARLIEST <= start_utc < LATEST):
        raise _Skip("event.date_out_of_range", "the event lies before 1900 or after 2199")

    recurrence_ics = None
    range_start: datetime = start_utc
    range_end: datetime | None = end_utc
    if rrules or rdates or rid is not None:
        recurrence_ics = _minimal_vevent(uid, start, end, rrules, rdates, exdates, rid_prop, rid)
        if rid is not None:
            rid_utc, _ = _instants(rid, rid, zone)
            range_start = min(start_utc, rid_utc)
            range_end = None if this_and_future else max(end_utc, rid_utc + (end_utc - start_utc))
        if rrules or rdates:
            range_start, series_end = _series_range(recurrence_ics, zone, budget)
            range_end = None if this_and_future else series_end
            if rid is not None:
                range_start = min(range_start, start_utc)

    return IncomingBooking(
        uid=uid,
        recurrence_key=recurrence_key(rid) if rid is not None else "",
        start_utc=start_utc,
        end_utc=end_utc,
        all_day=all_day,
        start_date=None if isinstance(start, datetime) else start,
        end_date=None if isinstance(end, datetime) else end,
        tzid=_tzid(start),
        recurrence_ics=recurrence_ics,
        range_start_utc=range_start,
        range_end_utc=range_end,
        status=STATUSES.get(str(event.get("STATUS", "")).strip().upper(), "confirmed"),
        sequence=_int(event.get("SEQUENCE")),
        last_modified_utc=_stamp(event.get("LAST-MODIFIED")),
        this_and_future=this_and_future,
        title=_text(event.get("SUMMARY"), 500),
        location=_text(event.get("LOCATION"), 500),
        description=_text(event.get("DESCRIPTION"), 4000),
        practitioner_name=_practitioner(event),
        mode=_mode(event),
        interpreter=bool(event.get("X-PK-INTERPRETER")),
        interpreter_language=_text(event.get("X-PK-INTERPRETER"), 50) or None,
        transport_needed=_text(event.get("X-PK-TRANSPORT"), 10).upper() == "TRUE",
        cancellation_terms=_text(event.get("X-PK-CANCELLATION"), 500) or None,
        no_show_fee=_text(event.get("X-PK-NO-SHOW-FEE"), 200) or None,
        transparent=str(event.get("TRANSP", "")).strip().upper() == "TRANSPARENT",
    )


def _first(value: Any) -> Any:
    """A property's value, or the first of several (a property given twice)."""
    return (value[0] if value else None) if isinstance(value, list) else value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _normalise(prop: Any, zone: tzinfo) -> date | datetime:
    """A DTSTART-like value as a date, or an aware datetime in an IANA zone or UTC."""
    if isinstance(prop, list):
        raise _Skip("event.damaged", f"{prop[0].__class__.__name__} given more than once")
    value = prop.dt
    if isinstance(value, timedelta) or not isinstance(value, date):
        raise _Skip("event.damaged", "a time value is not a date or date-time")
    return _normalise_value(value, prop.params.get("TZID"), zone)


def _normalise_value(value: date, tzid: str | None, zone: tzinfo) -> date | datetime:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        if tzid:
            raise _Skip("event.unknown_tzid", f"unknown time zone {str(tzid)[:60]!r}")
        value = value.replace(tzinfo=zone)  # floating time: the person's own zone
    assert value.tzinfo is not None
    if isinstance(value.tzinfo, ZoneInfo) or _is_utc(value.tzinfo):
        return value
    known = iana_zone(str(tzid)) if tzid else None
    if known is not None:
        # A file's own VTIMEZONE for a zone we know by name (Exchange writes Windows names
        # with simplified rules): the IANA rules are the better truth for the wall-clock time.
        return value.replace(tzinfo=known)
    # A zone defined only by a custom VTIMEZONE: keep the instant, in UTC.
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=512)
def iana_zone(tzid: str) -> ZoneInfo | None:
    """The IANA zone a TZID names: itself, a Windows name, or a vendor-prefixed name."""
    cleaned = tzid.strip().strip('"').strip("/")
    candidates = [cleaned]
    if cleaned in WINDOWS_TO_OLSON:
        candidates.append(WINDOWS_TO_OLSON[cleaned])
    parts = cleaned.split("/")
    candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
    for name in candidates:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
            continue
    return None


def _as_utc(value: date | datetime) -> date | datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _is_utc(tz: tzinfo) -> bool:
    return tz is UTC or str(tz) in ("UTC", "tzutc()")


def _end(event: Any, start: date | datetime, zone: tzinfo) -> date | datetime:
    if "DTEND" in event:
        end = _normalise(event["DTEND"], zone)
        if isinstance(end, datetime) and isinstance(start, datetime) and end.tzinfo != start.tzinfo:
            end = end.astimezone(start.tzinfo)
        return end
    if "DURATION" in event:
        duration = event["DURATION"].dt
        if not isinstance(duration, timedelta):
            raise _Skip("event.damaged", "DURATION is not a duration")
        if duration < timedelta(0):
            raise _Skip("event.end_before_start", "the event has a negative DURATION")
        return start + duration
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _date_list(event: icalendar.Component, name: str, zone: tzinfo) -> list[Any]:
    values: list[Any] = []
    for prop in _as_list(event.get(name)):
        tzid = prop.params.get("TZID")
        for item in prop.dts:
            value = item.dt
            if not isinstance(value, date | tuple):
                raise _Skip("event.damaged", f"{name} holds a value that is not a date")
            if isinstance(value, tuple):  # PERIOD: (start, end or duration)
                # An explicit instant needs no wall-clock rules: kept in UTC, because
                # icalendar writes a PERIOD back without its TZID.
                first = _as_utc(_normalise_value(value[0], tzid, zone))
                second = value[1]
                if isinstance(second, datetime):
                    second = _as_utc(_normalise_value(second, tzid, zone))
                values.append((first, second))
            else:
                values.append(_normalise_value(value, tzid, zone))
    return values


def _minimal_vevent(
    uid: str,
    start: date | datetime,
    end: date | datetime,
    rrules: list[Any],
    rdates: list[Any],
    exdates: list[Any],
    rid_prop: Any,
    rid: date | datetime | None,
) -> str:
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTART", start)
    event.add("DTEND", end)
    for rule in rrules:
        event.add("RRULE", rule)
    for value in rdates:
        event.add("RDATE", [value])
    if exdates:
        event.add("EXDATE", exdates)
    if rid is not None:
        params = {"RANGE": "THISANDFUTURE"} if rid_prop.params.get("RANGE") else {}
        event.add("RECURRENCE-ID", rid, parameters=params)
    return event.to_ical().decode()


def _series_range(
    recurrence_ics: str, zone: ZoneInfo, budget: Budget
) -> tuple[datetime, datetime | None]:
    """First start and last end of a series; open-ended (None) if it has no end in sight."""
    try:
        extent = series_extent(recurrence_ics, budget=budget, scan_limit=SERIES_SCAN_LIMIT)
    except OverBudget as over:
        raise _Skip(over.code, over.reason) from None
    except Exception as exc:  # dateutil rejects impossible rules (INTERVAL=0 and the like)
        raise _Skip(
            "event.rrule_invalid", f"the repeat rule cannot be used ({_short(exc)})"
        ) from None
    if not extent.occurrences:
        start = first_occurrence_fallback(recurrence_ics, zone)
        return start, start
    spans = [_instants(o[1], o[2], zone) for o in extent.occurrences]
    first_start = min(start for start, _ in spans)
    if extent.open_ended:
        return first_start, None
    return first_start, max(end for _, end in spans)


def first_occurrence_fallback(recurrence_ics: str, zone: ZoneInfo) -> datetime:
    """DTSTART of a series that yields no occurrence at all (e.g. UNTIL before DTSTART)."""
    event: Any = icalendar.Event.from_ical(recurrence_ics)
    value = event["DTSTART"].dt
    return _instants(value, value, zone)[0]


def _instants(
    start: date | datetime, end: date | datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """Start and end as aware UTC; an all-day date counts from midnight in ``zone``."""

    def one(value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
            return aware.astimezone(UTC)
        return datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)

    return one(start), one(end)


def _tzid(start: date | datetime) -> str | None:
    if isinstance(start, datetime) and isinstance(start.tzinfo, ZoneInfo):
        return start.tzinfo.key
    if isinstance(start, datetime):
        return "UTC"
    return None


def _int(value: Any) -> int:
    try:
        return max(0, min(int(value), 2**31 - 1))
    except (TypeError, ValueError):
        return 0


def _stamp(prop: Any) -> datetime | None:
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()[:limit]


def _practitioner(event: icalendar.Component) -> str | None:
    explicit = _text(event.get("X-PK-PRACTITIONER"), 200)
    if explicit:
        return explicit
    organizer = event.get("ORGANIZER")
    name = getattr(organizer, "params", {}).get("CN") if organizer is not None else None
    return str(name).strip()[:200] or None if name else None


def _mode(event: icalendar.Component) -> str:
    explicit = _text(event.get("X-PK-MODE"), 20).lower()
    if explicit in MODES:
        return explicit
    if "CONFERENCE" in event:
        return "video"
    return "in_person"
