"""Scale-out on real processes: two gunicorn web servers and two `calendar-app scheduler`
processes on one database, as a county runs them. Bookings made at once through both web
servers never double-book; every due reminder leaves once through the real Twilio client;
no source is read by two schedulers at once; a stopped process finishes what it has in hand
and gives back the rest at once, not after a lease.

The processes run on the system clock (moved by libfaketime in one CI run, theirs with the
test's), so these tests build their world at the system clock's now."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.wrappers import Request, Response

from calendar_app.clock import SystemClock
from calendar_app.models import Booking, BookingOrigin, Person, Reminder, ReminderState, Source
from calendar_app.services import sources, sync
from calendar_app.services.access import Actor
from tests.support.feeds import FeedServer, feed_server, serving
from tests.support.helpers import event, people_with_a_visit_soon, vcalendar
from tests.support.oidc_broker import free_port
from tests.support.twilio_local import ACCOUNT, TOKEN, running_prism
from tests.support.world import PASSWORD, build_world

# Both databases: locking and claims between real processes depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

BIN = Path(sys.executable).parent
ZONE = ZoneInfo("Europe/Stockholm")
WAITING = (ReminderState.PLANNED, ReminderState.SENDING)


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SOURCE_ALLOWED_HOSTS": "127.0.0.1"}


# --- the local Twilio API, counted ---------------------------------------------------------


@dataclass
class CountingTwilio:
    """Forwards every request to Prism (the local Twilio API) and keeps what each message
    request asked for and the SID it got; ``delay`` slows each message down."""

    prism: str
    base: str = ""  # where the scheduler processes send
    delay: float = 0.0
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (to, body, sid)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):  # a WSGI app
        request = Request(environ)
        if self.delay:
            time.sleep(self.delay)
        answer = httpx.request(
            request.method,
            self.prism + request.full_path.rstrip("?"),
            content=request.get_data(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            timeout=30,
        )
        if request.method == "POST" and request.path.endswith("/Messages.json"):
            sid = answer.json().get("sid", "") if answer.status_code == 201 else ""
            with self.lock:
                self.sent.append((request.form["To"], request.form["Body"], sid))
        response = Response(answer.content, status=answer.status_code)
        response.headers["Content-Type"] = answer.headers.get("content-type", "")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with running_prism() as base:
        yield base


@pytest.fixture
def twilio(prism) -> Iterator[CountingTwilio]:
    counting = CountingTwilio(prism)
    with serving(counting) as origin:
        counting.base = origin
        yield counting


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with feed_server() as server:
        yield server


# --- real processes ------------------------------------------------------------------------


def _environment(url: str, twilio: CountingTwilio, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "CALENDAR_APP_DATABASE_URL": url,
        "CALENDAR_APP_SECRET_KEY": "test-secret",  # the sources' secrets are sealed with it
        "CALENDAR_APP_SOURCE_ALLOWED_HOSTS": "127.0.0.1",
        "CALENDAR_APP_TWILIO_ACCOUNT_SID": ACCOUNT,
        "CALENDAR_APP_TWILIO_AUTH_TOKEN": TOKEN,
        "CALENDAR_APP_TWILIO_FROM": "+46700000000",
        "CALENDAR_APP_TWILIO_API_BASE_URL": twilio.base,
        "CALENDAR_APP_PUBLIC_BASE_URL": "https://kalender.example.se",
        "CALENDAR_APP_SESSION_COOKIE_SECURE": "false",  # the test talks plain http
        "CALENDAR_APP_SCHEDULER_DISPATCH_SECONDS": "1",
        "CALENDAR_APP_SYNC_SECONDS": "1",
        **{f"CALENDAR_APP_{k}": v for k, v in settings.items()},
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, as systemd and container runtimes stop a service; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n{self.text()}") from None


def _start(name: str, command: list[str], env: dict[str, str], log: Path) -> Process:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, popen, log)


def _until(what: str, done: Callable[[], bool], seconds: float = 90, *logs: Process) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}; logs:\n" + "\n".join(p.text()[-3000:] for p in logs))
        time.sleep(0.2)


@contextmanager
def web_server(name: str, env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Process]]:
    """gunicorn with the production configuration, one worker; yields its origin."""
    port = free_port()
    env = {
        **env,
        "CALENDAR_APP_BIND": f"127.0.0.1:{port}",
        "CALENDAR_APP_WEB_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{name}"),  # one per server
    }
    command = [str(BIN / "gunicorn"), "-c", "python:calendar_app.gunicorn_conf"]
    process = _start(name, command, env, tmp_path / f"{name}.log")
    origin = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.popen.poll() is None, process.text()
        try:
            return httpx.get(f"{origin}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _until(f"{name} did not start", answers, 60, process)
        yield origin, process
    finally:
        process.stop()


@contextmanager
def scheduler(name: str, env: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    process = _start(name, [str(BIN / "calendar-app"), "scheduler"], env, tmp_path / f"{name}.log")
    try:
        _until(f"{name} did not start", lambda: "scheduler started" in process.text(), 60, process)
        yield process
    finally:
        process.stop()


def _dispatch_rounds(process: Process) -> int:
    """How many dispatch rounds the scheduler process has finished (APScheduler logs each)."""
    return sum(
        1
        for line in process.text().splitlines()
        if "send_due_reminders" in line and "executed successfully" in line
    )


# --- the world ------------------------------------------------------------------------------


def _log_in(client: httpx.Client, origin: str, username: str) -> None:
    """Through the real form, with its CSRF token, as a browser does."""
    page = client.get(f"{origin}/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, page[:500]
    answer = client.post(
        f"{origin}/login",
        data={"csrf_token": token.group(1), "username": username, "password": PASSWORD},
    )
    assert answer.status_code == 302 and "/login" not in answer.headers["location"], answer.text


def _sources(app, session, person_id: int, feeds: FeedServer, count: int, delay: float) -> list:
    now = SystemClock().now()
    added = []
    for n in range(count):
        at = now + timedelta(days=3, hours=n)
        end = at + timedelta(hours=1)
        body = vcalendar(event(f"s{n}", f":{at:%Y%m%dT%H%M00Z}", f":{end:%Y%m%dT%H%M00Z}"))
        url = feeds.set(f"/unit-{n}.ics", body, delay=delay)
        source = sources.add_source(
            session,
            Actor.operator(),
            person_id=person_id,
            adapter="ics_url",
            fields={"url": url},
            unit_name=f"Enhet {n}",
            policy=sync.SyncPolicy.from_config(app.config),
            now=now,
        )
        added.append(source.id)
    return added


def _native(session, person_id: int) -> int:
    """How many visits were booked in this service for the person."""
    count = session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.person_id == person_id, Booking.origin == BookingOrigin.NATIVE)
    )
    session.commit()
    return int(count)


def _due_and_unsent(session) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Reminder)
        .where(Reminder.state.in_(WAITING), Reminder.send_at_utc <= SystemClock().now())
    )
    session.commit()
    return int(count)


def _read_sources(session, ids: list[int]) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Source)
        .where(Source.id.in_(ids), Source.last_success_utc.is_not(None))
    )
    session.commit()
    return int(count)


# --- the tests ------------------------------------------------------------------------------


def test_two_web_servers_and_two_schedulers_together_lose_and_double_nothing(
    app, session, url, twilio, feeds, tmp_path
):
    world = build_world(session, SystemClock().now())
    person = session.get(Person, world.person_id)
    person.phone_e164 = "+46709876543"
    session.commit()
    source_ids = _sources(app, session, world.person_id, feeds, count=8, delay=0.3)
    native_before = _native(session, world.person_id)
    env = _environment(url, twilio)

    with ExitStack() as stack:
        origin_a, web_a = stack.enter_context(web_server("web-a", env, tmp_path))
        origin_b, web_b = stack.enter_context(web_server("web-b", env, tmp_path))
        schedulers = [stack.enter_context(scheduler(f"sched-{n}", env, tmp_path)) for n in "ab"]
        everyone = [web_a, web_b, *schedulers]

        # A caregiver signs in on one server; the session works on the other as well.
        cookies = httpx.Cookies()
        with httpx.Client(cookies=cookies) as client:
            _log_in(client, origin_a, "caregiver")
            cookies = client.cookies
        # Six slots, each wanted by four requests at once, two through each server.
        start = SystemClock().now().astimezone(ZONE).replace(second=0, microsecond=0) + timedelta(
            hours=3
        )
        slots = [start + timedelta(hours=h) for h in range(6)]
        attempts = [(slot, origin) for slot in slots for origin in (origin_a, origin_b) * 2]
        barrier = threading.Barrier(len(attempts))
        answers: dict[int, list[tuple[int, str]]] = {n: [] for n in range(len(slots))}
        lock = threading.Lock()

        def book(slot_number: int, origin: str) -> None:
            slot = slots[slot_number]
            with httpx.Client(cookies=cookies, timeout=60) as client:
                barrier.wait(timeout=60)
                answer = client.post(
                    f"{origin}/api/v1/people/{world.person_id}/visits",
                    json={
                        "date": slot.date().isoformat(),
                        "start": slot.strftime("%H:%M"),
                        "minutes": 45,
                        "title": "Samtal",
                        "location": "Sigfridsvägen 9",
                    },
                )
            code = (
                answer.json().get("error", {}).get("code", "") if answer.status_code != 201 else ""
            )
            with lock:
                answers[slot_number].append((answer.status_code, code))

        threads = [
            threading.Thread(target=book, args=(slots.index(slot), origin))
            for slot, origin in attempts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        _until(
            "not every source was read",
            lambda: _read_sources(session, source_ids) == len(source_ids),
            90,
            *everyone,
        )
        _until("reminders are still waiting", lambda: _due_and_unsent(session) == 0, 90, *everyone)
        # Two more dispatch rounds in each scheduler: a double send would show now.
        rounds = [_dispatch_rounds(process) for process in schedulers]
        _until(
            "the schedulers stopped dispatching",
            lambda: all(
                _dispatch_rounds(p) >= r + 2 for p, r in zip(schedulers, rounds, strict=True)
            ),
            30,
            *schedulers,
        )
        stopped = [process.stop() for process in everyone]

    # No double booking: each slot was won by exactly one request, through either server.
    for number, outcomes in answers.items():
        assert sorted(outcomes) == [(201, "")] + [(409, "clash")] * 3, (number, outcomes)
    assert _native(session, world.person_id) == native_before + len(slots)

    # No source read twice, none read by both schedulers at once.
    assert all(feeds.requests[f"/unit-{n}.ics"] == 1 for n in range(8)), feeds.requests
    assert max(feeds.most_at_once.values()) == 1

    # Every due reminder sent once: each message the gateway took has its own SID, every
    # row points at one of them, no row is left waiting, and each visit is in exactly one
    # message to each recipient (a day's reminders to one number go as one message).
    rows = session.execute(
        select(Reminder.state, Reminder.message_sid).where(
            Reminder.send_at_utc <= SystemClock().now()
        )
    ).all()
    session.commit()
    gateway_sids = [sid for _to, _body, sid in twilio.sent]
    assert all(gateway_sids) and len(set(gateway_sids)) == len(gateway_sids)
    assert {sid for state, sid in rows if state == ReminderState.SENT and sid} == set(gateway_sids)
    assert not [row for row in rows if row.state in WAITING]
    mentioned: dict[str, list[str]] = {}
    for to, body, _sid in twilio.sent:
        mentioned.setdefault(to, []).extend(re.findall(r"kl\. (\d\d\.\d\d)", body))
    for to, times in mentioned.items():
        assert len(times) == len(set(times)), f"a visit reminded twice to {to[:6]}…"
    booked = {slot.strftime("%H.%M") for slot in slots}
    assert booked <= set(mentioned["+46709876543"]), "a booked visit was never reminded"
    assert stopped == [0, 0, 0, 0]


def test_a_stopped_scheduler_finishes_what_it_holds_and_gives_the_rest_back_at_once(
    app, session, url, twilio, feeds, tmp_path
):
    people = 20
    people_with_a_visit_soon(session, people, "+4670222", SystemClock().now())
    owner = session.scalars(select(Person.id)).first()
    source_ids = _sources(app, session, owner, feeds, count=6, delay=1.0)
    twilio.delay = 0.5  # slow messages: the stop comes while the batch is being sent
    # A lease far longer than the test: only a released claim can be taken again in time.
    env = _environment(url, twilio, REMINDER_LEASE_SECONDS="3600", SYNC_LEASE_SECONDS="3600")

    with scheduler("first", env, tmp_path) as first:
        _until("the first scheduler sent nothing", lambda: len(twilio.sent) >= 2, 60, first)
        _until("the first scheduler read nothing", lambda: sum(feeds.requests.values()) >= 1)
        began = time.monotonic()
        assert first.stop() == 0
        took = time.monotonic() - began
    assert took < 10, f"stopping took {took:.1f} s"
    assert "scheduler stopped" in first.text()

    # Nothing is left claimed: untried reminders are planned again (their attempt not
    # counted), unread sources are free.
    claimed = session.execute(
        select(Reminder.state, Reminder.attempts).where(Reminder.state == ReminderState.SENDING)
    ).all()
    planned_attempts = session.scalars(
        select(Reminder.attempts).where(Reminder.state == ReminderState.PLANNED)
    ).all()
    held = session.scalars(select(Source.id).where(Source.claimed_by != "")).all()
    session.commit()
    sent_by_first = len(twilio.sent)
    assert claimed == [] and held == []
    assert sent_by_first < people, "the stop came too late to show anything"
    assert set(planned_attempts) == {0}

    with scheduler("second", env, tmp_path) as second:
        _until(
            "the second did not send the rest", lambda: _due_and_unsent(session) == 0, 60, second
        )
        _until(
            "the second did not read the rest",
            lambda: _read_sources(session, source_ids) == len(source_ids),
            60,
            second,
        )
    sids = [sid for _to, _body, sid in twilio.sent]
    states = session.execute(
        select(Reminder.state, Reminder.reason, Reminder.send_at_utc, Reminder.visit_start_utc)
    ).all()
    states = [*states, ("now", SystemClock().now())]
    session.commit()
    assert len(sids) == len(set(sids))
    assert sorted(to for to, _b, _s in twilio.sent) == sorted(
        f"+4670222{n:04d}" for n in range(people)
    ), f"each person's reminder left exactly once; the rows: {states}; {second.text()[-6000:]}"
    assert all(feeds.requests[f"/unit-{n}.ics"] == 1 for n in range(6))


def test_a_stopped_web_server_finishes_the_request_in_hand(app, url, twilio, tmp_path):
    env = _environment(url, twilio)
    with web_server("web", env, tmp_path) as (origin, process):
        port = int(origin.rsplit(":", 1)[1])
        body = b"username=karin&password=not-her-password"
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            # The login form's CSRF check reads the whole body: the request is in hand,
            # waiting for the rest of it, when the server is told to stop.
            conn.sendall(
                b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)  # for the worker to take the request: nothing outside shows it
            process.popen.send_signal(signal.SIGTERM)
            _until(
                "gunicorn did not take SIGTERM",
                lambda: "Handling signal: term" in process.text(),
                30,
                process,
            )
            conn.sendall(body[10:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert process.popen.wait(timeout=40) == 0
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0] == b"HTTP/1.1 400 BAD REQUEST", answer[:300]
    length = re.search(rb"(?i)content-length: (\d+)", head)
    assert length and len(content) == int(length.group(1)) > 0  # answered whole, not cut off
