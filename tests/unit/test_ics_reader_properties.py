"""The ICS reader on arbitrary input (issue 21, point 6): whatever bytes arrive, it answers
with a read or its own ProviderError, soon; and whatever series it accepts, a view can
expand without an error and within the budget.

Hypothesis draws the examples; ``derandomize`` makes them the same on every run, so what
fails on CI fails the same way on a laptop. The deadline is generous for a busy 2-core
machine: a read that takes seconds is what these tests are here to catch.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendar_app.domain.bookings import ReadResult
from calendar_app.domain.recurrence import MAX_PER_YEAR, expand
from calendar_app.providers import ProviderError, ics

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
)
ZONE = "Europe/Stockholm"


def _read(data: bytes) -> ReadResult | None:
    """The reader's answer: a read, or None for its own refusal; anything else escapes."""
    try:
        return ics.parse(data, default_zone=ZONE, max_bytes=1024 * 1024)
    except ProviderError:
        return None


def _views_of(read: ReadResult | None) -> None:
    """Every accepted series expands around its start without an error, within budget."""
    for booking in read.bookings if read else ():
        if booking.recurrence_ics is None:
            continue
        start = booking.range_start_utc
        found = expand(
            [booking.recurrence_ics], start - timedelta(days=1), start + timedelta(days=40)
        )
        assert len(found) <= 2 * MAX_PER_YEAR  # at most two calendar years, each in budget


# --- Arbitrary bytes ---------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_are_read_or_refused_with_the_adapters_own_error(data):
    _views_of(_read(data))


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_inside_a_calendar_are_read_or_refused(data):
    _views_of(_read(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + data + b"\r\nEND:VCALENDAR\r\n"))


# --- Structured, then mutated, iCalendar -------------------------------------------------


def _day(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


# Mostly real dates near today's, some at the ends of the calendar, some no date at all.
DAYS = st.one_of(
    st.dates(date(2025, 1, 1), date(2028, 12, 31)).map(_day),
    st.dates().map(_day),
    st.sampled_from(["00010101", "99991231", "19000101", "21991231", "20260229", "20261301"]),
)
CLOCKS = st.one_of(
    st.times().map(lambda t: f"T{t.hour:02d}{t.minute:02d}{t.second:02d}"),
    st.sampled_from(["", "T240000", "T236199", "T1200"]),
)
# Most values are well formed, so that the reader gets past them to what comes after.
GOOD_INSTANTS = st.builds(
    lambda zone, day, clock: f"{zone}:{day}{clock}{'Z' if not zone else ''}",
    st.sampled_from(
        ["", ";TZID=Europe/Stockholm", ";TZID=W. Europe Standard Time", ";TZID=Custom"]
    ),
    st.dates(date(2025, 1, 1), date(2028, 12, 31)).map(_day),
    st.times().map(lambda t: f"T{t.hour:02d}{t.minute:02d}00"),
)
WILD_INSTANTS = st.builds(
    lambda tzid, day, clock, zulu: f"{tzid}:{day}{clock}{zulu}",
    st.sampled_from(
        [
            "",
            ";TZID=/mozilla.org/20050126_1/Europe/Berlin",
            ";TZID=Mars/Olympus_Mons",
            ";TZID=Europe",
            ';TZID="Europe/Stockholm"',
            ";TZID=",
            ";VALUE=DATE",
            ";VALUE=PERIOD",
        ]
    ),
    DAYS,
    CLOCKS,
    st.sampled_from(["", "Z"]),
)
INSTANTS = st.one_of(*[GOOD_INSTANTS] * 6, WILD_INSTANTS)
NUMBERS = st.one_of(
    st.integers(1, 400).map(str),
    st.sampled_from(["0", "-3", "999999999", "10" * 20, "x", ""]),
)
GOOD_VALUES = {
    "BYSECOND": st.integers(0, 59),
    "BYMINUTE": st.integers(0, 59),
    "BYHOUR": st.integers(0, 23),
    "BYDAY": st.sampled_from(["MO", "TU", "WE", "FR", "SU", "1MO", "-1FR", "5TU", "2SA"]),
    "BYMONTHDAY": st.integers(1, 31) | st.integers(-31, -1),
    "BYYEARDAY": st.integers(1, 366) | st.integers(-366, -1),
    "BYWEEKNO": st.integers(1, 53) | st.integers(-53, -1),
    "BYMONTH": st.integers(1, 12),
    "BYSETPOS": st.integers(1, 366) | st.integers(-366, -1),
}
WILD_VALUES = st.sampled_from(["-1", "0", "61", "367", "53SU", "XX", ""])
RULE_PARTS = st.one_of(
    st.builds(lambda n: f"INTERVAL={n}", NUMBERS),
    st.builds(lambda n: f"COUNT={n}", NUMBERS),
    st.builds(lambda day, clock: f"UNTIL={day}{clock}", DAYS, st.sampled_from(["", "T000000Z"])),
    st.builds(lambda w: f"WKST={w}", st.sampled_from(["MO", "SU", "XX"])),
    *(
        st.builds(
            lambda name, values: f"{name}={','.join(str(v) for v in values)}",
            st.just(name),
            st.lists(values | WILD_VALUES if name == "BYDAY" else values, min_size=1, max_size=60),
        )
        for name, values in GOOD_VALUES.items()
    ),
)
WILD_PARTS = st.builds(
    lambda name, v: f"{name}={v}", st.sampled_from(sorted(GOOD_VALUES)), WILD_VALUES
)
FREQS = st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"] * 3 + ["HOURLY", "X", ""])
RULES = st.builds(
    lambda freq, parts: ";".join([f"FREQ={freq}", *parts]),
    FREQS,
    st.lists(st.one_of(*[RULE_PARTS] * 6, WILD_PARTS), max_size=5),
)
TEXT = st.text(st.characters(exclude_characters="\r\n"), max_size=30)
EXTRAS = st.one_of(
    st.builds(lambda v: f"RRULE:{v}", RULES),
    st.builds(
        lambda days: "RDATE:" + ",".join(days),
        st.lists(st.builds(lambda d, c: d + c, DAYS, CLOCKS), min_size=1, max_size=5),
    ),
    st.builds(lambda v: f"EXDATE{v}", INSTANTS),
    st.builds(lambda v: f"RECURRENCE-ID{v}", INSTANTS),
    st.builds(lambda v: f"RECURRENCE-ID;RANGE=THISANDFUTURE{v}", INSTANTS),
    st.builds(lambda v: f"DTSTART{v}", INSTANTS),
    st.builds(
        lambda v: f"DURATION:{v}",
        st.sampled_from(["PT1H", "P1D", "-PT1H", "P99999999W", "PT", "1H"]),
    ),
    st.builds(lambda v: f"SEQUENCE:{v}", NUMBERS),
    st.builds(lambda v: f"STATUS:{v}", st.sampled_from(["CANCELLED", "TENTATIVE", "CONFIRMED"])),
    st.builds(lambda v: f"SUMMARY:{v}", TEXT),
    st.builds(lambda v: f"X-{v}:1", st.text("ABCXYZ-", min_size=1, max_size=8)),
    TEXT,
)


@st.composite
def events(draw: st.DrawFn) -> list[str]:
    """A VEVENT with a start, most often an end and a rule, and whatever else."""
    lines = [f"UID:{draw(st.sampled_from(['a', 'b', 'c', '', 'a' * 300]))}"]
    lines.append(f"DTSTART{draw(INSTANTS)}")
    if draw(st.integers(0, 3)):
        lines.append(f"DTEND{draw(INSTANTS)}")
    if draw(st.integers(0, 2)):
        lines.append(f"RRULE:{draw(RULES)}")
    lines += draw(st.lists(EXTRAS, max_size=3))
    return ["BEGIN:VEVENT", *draw(st.permutations(lines)), "END:VEVENT"]


HEADERS = st.lists(
    st.sampled_from(
        [
            ["METHOD:PUBLISH"],
            ["METHOD:CANCEL"],
            ["METHOD:REQUEST"],
            ["METHOD:REPLY"],
            ["X-WR-TIMEZONE:Europe/Stockholm"],
            ["X-WR-TIMEZONE:Nowhere/At_All"],
            ["CALSCALE:JULIAN"],
            [
                "BEGIN:VTIMEZONE",
                "TZID:Custom",
                "BEGIN:STANDARD",
                "DTSTART:19700101T000000",
                "TZOFFSETFROM:+0300",
                "TZOFFSETTO:+0300",
                "END:STANDARD",
                "END:VTIMEZONE",
            ],
        ]
    ),
    max_size=2,
).map(lambda blocks: [line for block in blocks for line in block])


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    """A VCALENDAR of random events, then now and then mutated: a line dropped (an END
    line, say) or repeated, or every line folded into the one before."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//EN", *draw(HEADERS)]
    for body in draw(st.lists(events(), min_size=1, max_size=3)):
        lines += body
    lines.append("END:VCALENDAR")
    if draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            del lines[index]
        else:
            lines.insert(index, lines[index])
    ending = draw(st.sampled_from(["\r\n"] * 6 + ["\n", "\r\n "]))
    return ending.join(lines).encode("utf-8", "surrogatepass")


@settings(SETTINGS, max_examples=300)
@given(calendars())
def test_mutated_calendars_are_read_or_refused_with_the_adapters_own_error(data):
    _views_of(_read(data))


@settings(SETTINGS, max_examples=60)
@given(
    st.sampled_from(sorted(GOOD_VALUES)),
    st.integers(1, 400),
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
)
def test_a_rule_with_many_values_is_read_or_skipped_soon(name, values, freq):
    rule = f"FREQ={freq};{name}=" + ",".join(str(v % 60) for v in range(values))
    data = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART:20260105T090000Z\r\nDTEND:20260105T093000Z\r\n"
        f"RRULE:{rule};BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    read = _read(data)
    _views_of(read)
    assert read is not None
    assert read.bookings or read.skipped[0].code in {
        "event.too_many_occurrences",
        "event.rrule_invalid",
        "event.damaged",
    }
