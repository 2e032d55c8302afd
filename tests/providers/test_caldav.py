"""The CalDAV adapter against a real Radicale server on 127.0.0.1: discovery, the window's
events (a series with its override and EXDATE, all-day events), what changes between reads,
an unchanged calendar, and every way a read can fail, the ways only a misbehaving server
shows (too slow, not XML, redirects, errors) against a fake DAV server beside it; and the
real scheduler keeping a person's calendar current from Radicale."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from urllib3.util import connection as urllib3_connection
from werkzeug.wrappers import Request, Response

from calendar_app.models import Booking, BookingStatus
from calendar_app.providers import AdapterRead, ProviderError, SourceConfig, Window
from calendar_app.providers.caldav_source import CalDavAdapter
from calendar_app.providers.ics_url import DEADLINE_TIMEOUTS
from calendar_app.scheduler import jobs
from calendar_app.services import sources, sync
from calendar_app.services.access import Actor
from tests.support.feeds import serving
from tests.support.helpers import add_person, event, vcalendar, wait_for
from tests.support.oidc_broker import free_port
from tests.support.radicale_server import PASSWORD, USER, Radicale, radicale_server  # noqa: F401

LOCAL = frozenset({"127.0.0.1"})
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
STAMP = {"DTSTAMP": "20251201T000000Z"}

SINGLE = vcalendar(event("single", ":20260302T090000Z", ":20260302T100000Z", **STAMP))
SERIES = vcalendar(
    event(
        "series",
        ";TZID=Europe/Stockholm:20260105T100000",
        ";TZID=Europe/Stockholm:20260105T110000",
        summary="Samtal",
        RRULE="FREQ=WEEKLY;COUNT=6",
        EXDATE=";TZID=Europe/Stockholm:20260119T100000".removeprefix(";"),
        **STAMP,
    ).replace("EXDATE:TZID=", "EXDATE;TZID="),
    event(
        "series",
        ";TZID=Europe/Stockholm:20260112T140000",
        ";TZID=Europe/Stockholm:20260112T150000",
        summary="Samtal (flyttat)",
        RECURRENCE_ID=";TZID=Europe/Stockholm:20260112T100000".removeprefix(";"),
        **STAMP,
    ).replace("RECURRENCE-ID:TZID=", "RECURRENCE-ID;TZID="),
)
ALL_DAY = vcalendar(
    event("allday", ";VALUE=DATE:20260410", ";VALUE=DATE:20260411", summary="Dagvård", **STAMP)
)
OUTSIDE = vcalendar(event("outside", ":20300101T090000Z", ":20300101T100000Z", **STAMP))


def config(url: str, *, password: str = PASSWORD, **settings: str) -> SourceConfig:
    return SourceConfig(
        settings=settings,
        secrets={"url": url, "username": USER, "password": password},
        default_zone="Europe/Stockholm",
        max_bytes=1024 * 1024,
        timeout=5.0,
        allowed_hosts=LOCAL,
    )


def read(url: str, cursor: Mapping[str, str] | None = None, **kw: str) -> AdapterRead:
    return CalDavAdapter().read(config(url, **kw), WINDOW, cursor or {})


def by_identity(result: AdapterRead) -> dict[tuple[str, str], object]:
    assert result.read is not None
    return {b.identity: b for b in result.read.bookings}


def failure(url: str, **kw: object) -> str:
    source = config(url)
    source = SourceConfig(**{**source.__dict__, **kw})
    with pytest.raises(ProviderError) as caught:
        CalDavAdapter().read(source, WINDOW, {})
    assert url not in caught.value.message and PASSWORD not in caught.value.message
    return caught.value.code


@pytest.fixture
def calendar(radicale: Radicale) -> str:
    """A fresh calendar holding a single event, a series with an override, an all-day event."""
    url = radicale.make_calendar()
    radicale.put(url, "single.ics", SINGLE)
    radicale.put(url, "series.ics", SERIES)
    radicale.put(url, "allday.ics", ALL_DAY)
    radicale.put(url, "outside.ics", OUTSIDE)
    return url


def test_a_read_lists_the_windows_events_with_series_override_and_all_day(calendar):
    result = read(calendar)
    found = by_identity(result)
    assert set(found) == {
        ("single", ""),
        ("series", ""),
        ("series", "20260112T090000Z"),
        ("allday", ""),
    }
    assert result.read is not None and result.read.complete
    single = found[("single", "")]
    assert single.start_utc == datetime(2026, 3, 2, 9, tzinfo=UTC)
    master = found[("series", "")]
    assert master.tzid == "Europe/Stockholm"
    assert master.start_utc == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert "RRULE:FREQ=WEEKLY;COUNT=6" in (master.recurrence_ics or "")
    assert "EXDATE" in (master.recurrence_ics or "")
    moved = found[("series", "20260112T090000Z")]
    assert moved.start_utc == datetime(2026, 1, 12, 13, tzinfo=UTC)
    assert moved.title == "Samtal (flyttat)"
    all_day = found[("allday", "")]
    assert all_day.all_day and all_day.start_date == date(2026, 4, 10)


def test_an_unchanged_calendar_reads_as_unchanged(calendar):
    first = read(calendar)
    assert first.cursor["sync_token"]
    again = read(calendar, first.cursor)
    assert again.read is None
    assert again.cursor == first.cursor


def test_a_moved_deleted_and_changed_event_show_in_the_next_read(calendar, radicale):
    first = read(calendar)
    radicale.put(
        calendar,
        "single.ics",
        vcalendar(event("single", ":20260303T120000Z", ":20260303T130000Z", **STAMP)),
    )
    radicale.delete(calendar, "allday.ics")
    radicale.put(
        calendar,
        "series.ics",
        SERIES.replace(b"T150000", b"T170000").replace(b"T140000", b"T160000"),
    )
    second = read(calendar, first.cursor)
    found = by_identity(second)
    assert set(found) == {("single", ""), ("series", ""), ("series", "20260112T090000Z")}
    assert found[("single", "")].start_utc == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert found[("series", "20260112T090000Z")].start_utc == datetime(2026, 1, 12, 15, tzinfo=UTC)
    assert second.cursor["sync_token"] != first.cursor["sync_token"]


def test_a_new_window_reads_again_though_the_calendar_is_unchanged(calendar):
    first = read(calendar)
    later = Window(datetime(2026, 1, 2, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    again = CalDavAdapter().read(config(calendar), later, first.cursor)
    assert again.read is not None


def test_the_calendar_is_found_from_the_users_home_by_name(radicale, calendar):
    named = radicale.make_calendar("besok")
    radicale.put(named, "only.ics", SINGLE.replace(b"UID:single", b"UID:only"))
    result = read(radicale.home, calendar="besok")
    assert set(by_identity(result)) == {("only", "")}


def test_an_empty_calendar_is_a_complete_empty_read(radicale):
    result = read(radicale.make_calendar())
    assert result.read is not None and result.read.bookings == () and result.read.complete


def test_a_wrong_password_is_an_auth_failure(calendar):
    with pytest.raises(ProviderError) as caught:
        read(calendar, password="fel")
    assert caught.value.code == "source.auth"


def test_a_closed_port_is_unreachable():
    assert failure(f"http://127.0.0.1:{free_port()}/alva/cal/") == "source.unreachable"


def test_a_collection_that_is_no_calendar_is_refused(radicale):
    plain = radicale.make_address_book("kontakter")
    assert failure(plain) == "source.not_calendar"


def test_a_calendar_object_is_not_a_calendar(calendar):
    assert failure(calendar + "single.ics") == "source.not_calendar"


def test_a_missing_address_is_an_http_failure(radicale):
    assert failure(radicale.home + "finns-inte/") == "source.http"


def test_an_answer_beyond_the_size_cap_is_refused(calendar):
    assert failure(calendar, max_bytes=200) == "ics.too_large"


def test_a_local_address_needs_the_allow_list(calendar):
    assert failure(calendar, allowed_hosts=frozenset()) == "source.address_blocked"
    with pytest.raises(ProviderError) as caught:
        CalDavAdapter().prepare({"url": calendar}, frozenset())
    assert caught.value.code == "source.address_blocked"


def test_prepare_seals_the_address_and_credentials_and_shows_the_host(calendar):
    prepared = CalDavAdapter().prepare(
        {"url": calendar, "username": USER, "password": PASSWORD, "calendar": "besok"}, LOCAL
    )
    assert prepared.secrets == {"url": calendar, "username": USER, "password": PASSWORD}
    assert prepared.settings == {"host": "127.0.0.1", "calendar": "besok"}
    assert prepared.display == "http://127.0.0.1/…"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/cal/", "webcal://example.com/cal/", "https://u:p@example.com/c/"]
)
def test_prepare_refuses_addresses_that_are_not_plain_http(url):
    with pytest.raises(ProviderError) as caught:
        CalDavAdapter().prepare({"url": url}, frozenset())
    assert caught.value.code == "source.url"


def test_a_caldav_source_keeps_a_persons_calendar_current_through_sync(
    app, session, now, radicale: Radicale
):
    """End to end: added as a source, read by the sync engine, then a visit is moved and
    another deleted on the server; the next round shows both."""
    app.config["SOURCE_ALLOWED_HOSTS"] = "127.0.0.1"
    person = add_person(session, now)
    calendar = radicale.make_calendar()
    radicale.put(calendar, "a.ics", vcalendar(event("a", ":20261202T090000Z", ":20261202T100000Z")))
    radicale.put(calendar, "b.ics", vcalendar(event("b", ":20261203T090000Z", ":20261203T100000Z")))
    policy = sync.SyncPolicy.from_config(app.config)
    sources.add_source(
        session,
        Actor.operator(),
        person_id=person.id,
        adapter="caldav",
        fields={"url": calendar, "username": USER, "password": PASSWORD},
        unit_name="Boendestöd Växjö kommun",
        name="planering",
        policy=policy,
        now=now,
    )
    factory = app.extensions["session_factory"]
    [first] = sync.sync_due(factory, policy, worker="t", clock=lambda: now)
    assert first.summary is not None and first.summary.added == 2, first.line()

    radicale.put(calendar, "a.ics", vcalendar(event("a", ":20261202T130000Z", ":20261202T140000Z")))
    radicale.delete(calendar, "b.ics")
    later = now + timedelta(hours=1)
    [second] = sync.sync_due(factory, policy, worker="t", clock=lambda: later)
    assert second.summary is not None, second.line()
    assert (second.summary.updated, second.summary.cancelled) == (1, 1)
    rows = {
        b.uid: b for b in session.scalars(select(Booking).where(Booking.person_id == person.id))
    }
    session.commit()
    assert rows["a"].start_utc.hour == 13
    assert rows["b"].status == BookingStatus.CANCELLED


# A misbehaving DAV server: what Radicale never does.

XML = "application/xml; charset=utf-8"
Answer = Callable[[], Response]


class DavFake:
    """A DAV server on 127.0.0.1 that answers each path as the test says; what it was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.asked: list[tuple[str, str]] = []
        self.base = ""
        self.port = 0

    def secret_url(self, answer: Answer) -> str:
        """A fresh address with a secret-looking path, answered by ``answer``."""
        path = f"/dav/hemlig-{uuid.uuid4().hex}/kalender/"
        self.answers[path] = answer
        return self.base + path

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.asked.append((request.method, request.path))
        answer = self.answers.get(request.path)
        response = answer() if answer else Response(status=404)
        return response(environ, start_response)


@pytest.fixture(scope="module")
def dav() -> Iterator[DavFake]:
    fake = DavFake()
    with serving(fake) as origin:
        fake.base = origin
        fake.port = int(origin.rsplit(":", 1)[1])
        yield fake


def answering(status: int, body: bytes = b"", content_type: str = XML, **headers: str) -> Answer:
    return lambda: Response(body, status=status, content_type=content_type, headers=headers)


def dripping(every: float, times: int) -> Answer:
    """A 207 whose head comes at once and whose body comes a byte per ``every`` seconds,
    so no single read waits as long as the socket timeout."""

    def body() -> Iterator[bytes]:
        yield b'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:">'
        for _ in range(times):
            time.sleep(every)
            yield b" "
        yield b"</d:multistatus>"

    return lambda: Response(body(), status=207, content_type=XML)


def test_a_server_that_drips_its_answer_is_cut_short_at_the_deadline(dav):
    timeout = 0.3  # a socket timeout of 1 s (the library's least); a deadline of 0.9 s
    url = dav.secret_url(dripping(every=0.1, times=40))
    started = time.monotonic()
    assert failure(url, timeout=timeout) == "source.timeout"
    elapsed = time.monotonic() - started
    # Cut at the deadline, not after the whole 4 s answer (which would then parse).
    assert timeout * DEADLINE_TIMEOUTS <= elapsed < timeout * DEADLINE_TIMEOUTS + 1.0


JUNK = {
    "malformed_xml": answering(
        207, b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>'
    ),
    "xml_that_is_no_multistatus": answering(
        207, b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title/></feed>'
    ),
    "an_empty_multistatus": answering(207, b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"/>'),
    "a_web_page": answering(
        200,
        b"<!doctype html><html><body><h1>Logga in</h1></body></html>",
        content_type="text/html; charset=utf-8",
    ),
}


@pytest.mark.parametrize("junk", JUNK)
def test_an_answer_that_is_not_a_dav_multistatus_is_a_protocol_failure(dav, junk):
    assert failure(dav.secret_url(JUNK[junk])) == "source.protocol"


@pytest.mark.parametrize("junk", JUNK)
def test_a_confused_server_gets_no_part_of_the_address_into_the_logs(dav, junk, caplog):
    """The path may be the secret (a calendar's private address): the library's own
    warnings about a strange answer must not carry it either."""
    url = dav.secret_url(JUNK[junk])
    secret = url.split("/")[4]
    with caplog.at_level(logging.WARNING):
        failure(url)
    assert [r.getMessage() for r in caplog.records if secret in r.getMessage()] == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("private", ["10.0.0.1", "169.254.169.254"])
def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    dav, monkeypatch, status, private
):
    """Only 127.0.0.1 is allowed; its server redirects to a private address. The stand-in
    for the network connects such an address to 127.0.0.1, as if something answered there,
    and records that a connection was attempted."""
    attempted: list[str] = []
    connect = urllib3_connection.create_connection

    def recording_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        if host != "127.0.0.1":
            attempted.append(host)
            address = ("127.0.0.1", port)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", recording_connect)
    target = f"http://{private}:{dav.port}/latest/meta-data/"
    url = dav.secret_url(answering(status, Location=target))
    assert failure(url) == "source.address_blocked"
    assert attempted == []
    assert all(path != "/latest/meta-data/" for _, path in dav.asked)


def test_a_server_error_is_an_http_failure_without_the_body_it_echoed(dav):
    path = f"/dav/hemlig-{uuid.uuid4().hex}/kalender/"
    url = dav.base + path
    dav.answers[path] = answering(
        500, f"Internal error at {url} for {USER}:{PASSWORD}".encode(), content_type="text/plain"
    )
    with pytest.raises(ProviderError) as caught:
        CalDavAdapter().read(config(url), WINDOW, {})
    assert caught.value.code == "source.http"
    assert "500" in caught.value.message
    assert url not in caught.value.message and PASSWORD not in caught.value.message


@pytest.mark.parametrize(
    "headers", [{}, {"WWW-Authenticate": 'Basic realm="kalender"'}], ids=["bare", "basic"]
)
def test_a_refusal_from_another_server_is_an_auth_failure(dav, headers):
    url = dav.secret_url(answering(401, b"Unauthorized", content_type="text/plain", **headers))
    assert failure(url) == "source.auth"


def test_the_scheduler_keeps_a_caldav_calendar_current_on_its_own(app, session, radicale, clock):
    """A real APScheduler runs the sync job every second against Radicale; a visit is moved
    and another deleted on the server, the poll interval passes, and the stored bookings
    follow without anyone asking."""
    app.config.update(SOURCE_ALLOWED_HOSTS="127.0.0.1", SYNC_SECONDS=1, SCHEDULER_REPLAN_MINUTES=0)
    day = f"{clock.now() + timedelta(days=10):%Y%m%d}"

    def visit(uid: str, hour: int) -> bytes:
        return vcalendar(event(uid, f":{day}T{hour:02d}0000Z", f":{day}T{hour + 1:02d}0000Z"))

    person = add_person(session, clock.now())
    calendar = radicale.make_calendar()
    radicale.put(calendar, "a.ics", visit("a", 9))
    radicale.put(calendar, "b.ics", visit("b", 11))
    sources.add_source(
        session,
        Actor.operator(),
        person_id=person.id,
        adapter="caldav",
        fields={"url": calendar, "username": USER, "password": PASSWORD},
        unit_name="Boendestöd Växjö kommun",
        name="planering",
        poll_minutes=5,  # the least allowed; the clock below moves past it
        policy=sync.SyncPolicy.from_config(app.config),
        now=clock.now(),
    )

    def stored() -> dict[str, tuple[int, BookingStatus]]:
        session.expire_all()
        rows = {
            b.uid: (b.start_utc.hour, b.status)
            for b in session.scalars(select(Booking).where(Booking.person_id == person.id))
        }
        session.commit()
        return rows

    scheduler = jobs.build(app, BackgroundScheduler(timezone="UTC"))  # on the app's clock
    scheduler.start()
    try:
        wait_for(
            lambda: (
                stored() == {"a": (9, BookingStatus.CONFIRMED), "b": (11, BookingStatus.CONFIRMED)}
            )
        )
        radicale.put(calendar, "a.ics", visit("a", 13))
        radicale.delete(calendar, "b.ics")
        clock.advance(timedelta(minutes=10))  # the poll interval has passed
        wait_for(
            lambda: (
                stored() == {"a": (13, BookingStatus.CONFIRMED), "b": (11, BookingStatus.CANCELLED)}
            )
        )
    finally:
        scheduler.shutdown(wait=True)
