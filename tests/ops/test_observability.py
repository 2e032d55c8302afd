"""Running it for a whole county: liveness and readiness for the balancer, JSON log lines
with a request id and nothing personal in them, Prometheus metrics (requests by route,
reminders and sources read from the database, every gunicorn worker summed), and the
administrator's health page."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path

import httpx
import pytest
from alembic import command
from flask import Flask
from flask.logging import default_handler
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import URL

from calendar_app import create_app, logs
from calendar_app.demo import PERSONNUMMER
from calendar_app.metrics import code_schema
from calendar_app.migrations import alembic_config, upgrade
from calendar_app.models import (
    Person,
    Provider,
    ProviderKind,
    Reminder,
    ReminderState,
    Source,
    SourceState,
)
from calendar_app.services import feeds, tokens
from calendar_app.services.access import Actor
from tests.conftest import NOW, ROOT
from tests.support.oidc_broker import free_port
from tests.support.world import World, build_world, log_in

PHONE = "+46701234567"
TOKEN = "metrics-token-" + "x" * 24
HEAD = ",".join(sorted(code_schema().heads))


@pytest.fixture
def app_config() -> dict[str, object]:
    # JSON lines as in production: create_app installs the handler (see json_lines).
    return {"LOG_FORMAT": "json"}


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """configure_logging changes the process's root logger: put it back after each test."""
    root = logging.getLogger()
    app_logger = logging.getLogger("calendar_app")
    saved = (list(root.handlers), root.level, list(app_logger.handlers))
    yield
    root.handlers[:], app_logger.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])


@pytest.fixture
def json_lines(app: Flask) -> Callable[[], list[dict]]:
    """The JSON log lines written since the test began, each parsed (or the test fails)."""
    handler = logs.installed_handler()
    assert isinstance(handler, logging.StreamHandler), "create_app did not configure logging"
    buffer = io.StringIO()
    handler.setStream(buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]


def _unreachable(database_url: URL, tmp_path: Path) -> str:
    if database_url.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"


def _metrics(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    """/metrics parsed by Prometheus' own parser: (sample name, labels) -> value."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# --- liveness and readiness ---------------------------------------------------------------


@pytest.mark.databases("sqlite", "postgresql")
def test_liveness_answers_without_the_database_and_readiness_says_it_is_gone(
    database_url, tmp_path
):
    app = create_app({"TESTING": True, "DATABASE_URL": _unreachable(database_url, tmp_path)})
    try:
        client = app.test_client()
        live = client.get("/livez")
        assert live.status_code == 200 and live.json == {"status": "ok"}
        assert live.headers["Cache-Control"] == "no-store"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json == {"status": "error", "reason": "database unreachable"}
        assert client.get("/healthz").status_code == 503  # as before
    finally:
        app.extensions["feed_renderer"].stop()
        app.extensions["engine"].dispose()


@pytest.mark.databases("sqlite", "postgresql")
def test_readiness_is_ok_at_the_schema_head_the_code_expects(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "schema": HEAD}
    assert client.get("/healthz").json == {"status": "ok"}


@pytest.mark.databases("sqlite", "postgresql")
def test_readiness_fails_while_the_schema_is_one_revision_behind(app, client):
    engine = app.extensions["engine"]
    command.downgrade(alembic_config(engine), "-1")
    try:
        response = client.get("/readyz")
        behind = response.json
        assert response.status_code == 503, behind
        assert behind["status"] == "error" and behind["reason"].startswith("schema behind")
        assert behind["expected"] == HEAD and behind["schema"] not in ("", HEAD)
        assert behind["schema"] in code_schema().known
        assert client.get("/livez").status_code == 200  # alive, just not ready
        samples = _metrics(client)
        assert _value(samples, "calendar_app_schema_at_head") == 0
        assert _value(samples, "calendar_app_database_up") == 1
    finally:
        upgrade(engine)
    assert client.get("/readyz").status_code == 200
    assert _value(_metrics(client), "calendar_app_schema_at_head") == 1


@contextmanager
def _empty_database(database_url: URL, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL schema."""
    if database_url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.sqlite3"
        return
    schema = f"pk_empty_{secrets.token_hex(4)}"
    admin = create_engine(database_url.set(query={}))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = database_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.databases("sqlite", "postgresql")
def test_readiness_fails_on_a_database_without_our_schema(database_url, tmp_path):
    with _empty_database(database_url, tmp_path) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url})
        try:
            response = app.test_client().get("/readyz")
            assert response.status_code == 503
            assert response.json["reason"].startswith("no schema")
            assert response.json["schema"] == ""
        finally:
            app.extensions["feed_renderer"].stop()
            app.extensions["engine"].dispose()


# --- log lines ------------------------------------------------------------------------------


def test_a_request_writes_one_json_summary_line_with_its_request_id(client, json_lines):
    response = client.get("/livez", headers={"X-Request-ID": "lb-4711.a"})
    assert response.headers["X-Request-ID"] == "lb-4711.a"
    summary = [line for line in json_lines() if line["logger"] == "calendar_app.requests"]
    assert len(summary) == 1
    line = summary[0]
    assert line["request_id"] == "lb-4711.a" and line["method"] == "GET"
    assert line["route"] == "/livez" and line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert line["message"].startswith("GET /livez 200")


def test_the_route_in_a_line_is_the_url_rule_never_the_path(client, session, now, json_lines):
    world = build_world(session, now)
    log_in(client, "person")
    client.get(f"/people/{world.person_id}/week")
    client.get(f"/no/such/{world.pnr}")
    lines = json_lines()
    routes = {line.get("route") for line in lines if line["logger"] == "calendar_app.requests"}
    assert "/people/<int:person_id>/week" in routes and "/login" in routes
    assert all(f"/people/{world.person_id}" not in (route or "") for route in routes)
    assert world.pnr not in json.dumps(lines)


@pytest.mark.parametrize(
    "offered", ["199001012385", "9001012385-x", "+46701234567", "a b", "x" * 65, "<script>", ""]
)
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_new_one(client, offered):
    response = client.get("/livez", headers={"X-Request-ID": offered} if offered else {})
    given = response.headers["X-Request-ID"]
    assert given != offered and re.fullmatch(r"[0-9a-f]{32}", given)
    assert client.get("/livez").headers["X-Request-ID"] != given  # one per request


def test_lines_logged_inside_a_request_carry_its_id_and_route(client, session, now, json_lines):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = PHONE
    session.commit()
    log_in(client, "person")
    response = client.post(
        f"/people/{world.person_id}/reminders/test", headers={"X-Request-ID": "sms-test-1"}
    )
    assert response.status_code == 302
    # The console sender logs the (masked) number it would have sent to.
    sms = [line for line in json_lines() if line["logger"] == "calendar_app.sms"]
    assert len(sms) == 1, json_lines()
    assert sms[0]["request_id"] == "sms-test-1"
    assert sms[0]["route"] == "/people/<int:person_id>/reminders/test"
    assert PHONE not in sms[0]["message"]


def test_the_scrubber_removes_personnummer_phone_numbers_and_feed_tokens(json_lines):
    log = logging.getLogger("calendar_app.test")
    try:
        raise ValueError("no person 19900101-2385")
    except ValueError:
        log.exception(
            "lookup of %s, %s, %s and %s (%s, %s) via /feed/%s.ics",
            "199001012385",
            "9001012385",
            "900101-2385",
            "900101+2385",
            "+46 70-123 45 67",
            "%2B46701234567",
            "s3cretFeedT0ken",
            extra={"detail": "call +46701234567 about 199001012385"},
        )
    (line,) = [line for line in json_lines() if line["logger"] == "calendar_app.test"]
    text = json.dumps(line)
    for secret in ("2385", "46701234567", "70-123", "s3cretFeedT0ken"):
        assert secret not in text, secret
    assert line["message"].count("[personnummer]") == 4 and line["message"].count("[phone]") == 2
    assert "/feed/…" in line["message"]
    assert "[personnummer]" in line["exception"] and "ValueError" in line["exception"]
    assert line["detail"] == "call [phone] about [personnummer]"
    # Ordinary figures stay: dates, times, ids, short numbers.
    assert logs.scrub("2026-11-23 09:00 booking 4711 took 12 ms") == (
        "2026-11-23 09:00 booking 4711 took 12 ms"
    )


def test_configuring_twice_or_after_flask_made_its_handler_never_doubles_a_line(app):
    stream = io.StringIO()
    # As if the app's logger had been used before: Flask gave it its own handler.
    logging.getLogger("calendar_app").addHandler(default_handler)
    logs.configure_logging(app.config)
    logs.configure_logging(app.config, stream=stream)
    app.logger.warning("once")
    assert default_handler not in logging.getLogger("calendar_app").handlers
    ours = [h for h in logging.getLogger().handlers if h is logs.installed_handler()]
    assert len(ours) == 1
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["once"]


def test_create_app_keeps_todays_text_logs_unless_asked(tmp_path):
    root = logging.getLogger()
    before = list(root.handlers)
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    for extra, configured in (
        ({}, False),
        ({"LOG_FORMAT": "json", "LOG_CONFIGURE": False}, False),
        ({"LOG_CONFIGURE": True}, True),
    ):
        app = create_app({"DATABASE_URL": url, **extra})
        try:
            assert (logs.installed_handler() is not None) is configured, extra
            assert bool(app.extensions.get("log_requests")) is configured
        finally:
            app.extensions["feed_renderer"].stop()
            app.extensions["engine"].dispose()
            root.handlers[:] = before


def test_no_personnummer_phone_or_token_reaches_a_log_line_through_a_live_server(
    app, session, live_server, json_lines, clock
):
    """Real requests through werkzeug's server (whose access lines quote the path): a feed
    fetch, a login with a personnummer, a push API call, personal data in a query."""
    person = session.scalars(select(Person).where(Person.personnummer == PERSONNUMMER)).one()
    feed = feeds.create_feed(session, Actor.operator(), person.id, level="full", now=clock.now())
    unit = session.scalars(select(Provider).where(Provider.kind == ProviderKind.REGION)).first()
    assert unit is not None
    api = tokens.create_token(
        session,
        name="Bokningssystemet",
        provider_id=unit.id,
        scopes=["bookings:push"],
        created_by="test",
        now=clock.now(),
    )
    dashed = f"{PERSONNUMMER[:8]}-{PERSONNUMMER[8:]}"
    with httpx.Client(base_url=live_server, timeout=30) as http:
        assert http.get(f"/feed/{feed.token}.ics").status_code == 200
        page = http.get("/login").text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert csrf is not None
        refused = http.post(
            "/login",
            data={"csrf_token": csrf.group(1), "username": dashed, "password": "fel"},
        )
        assert refused.status_code == 401
        start = (clock.now() + timedelta(days=3)).replace(microsecond=0)
        pushed = http.put(
            f"/api/v1/push/bookings/{PERSONNUMMER}",
            json={
                "personnummer": dashed,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
            },
            headers={"Authorization": f"Bearer {api.secret}"},
        )
        assert pushed.status_code in (200, 201), pushed.text
        http.get("/login", params={"pnr": PERSONNUMMER, "phone": PHONE, "short": dashed[2:]})
        en_dash = f"{PERSONNUMMER[:8]}\u2013{PERSONNUMMER[8:]}"
        http.get("/login", params={"pnr": en_dash, "phone": "+46 70\u2010123 45 67"})
    # Paths as a client may send them, unnormalised (httpx would tidy ./ away).
    raw = HTTPConnection(live_server.removeprefix("http://"))
    for path in (
        f"/feed/./{feed.token}.ics",
        f"/feed//{feed.token}.ics",
        f"/feed/%2E/{feed.token}.ics",
        f"/feed%2F{feed.token}.ics",
        f"/login?pnr={PERSONNUMMER[:8]}%2D{PERSONNUMMER[8:]}&phone=%2B46%20701%2023%2045%2067",
    ):
        raw.request("GET", path)
        raw.getresponse().read()
    raw.close()
    lines = json_lines()
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for secret in (
        PERSONNUMMER,
        PERSONNUMMER[2:],
        dashed,
        dashed[2:],
        PHONE,
        "%2B46701234567",
        "701234567",
        feed.token,
        feed.token[:12],
        api.secret,
        en_dash[2:],
        "%E2%80%93" + PERSONNUMMER[8:],
        "%2D" + PERSONNUMMER[8:],
        "\u2010123",
        "%E2%80%90123",
        "701%2023",
    ):
        assert secret not in text, f"{secret[:6]}… in the log"
    access = [line["message"] for line in lines if line["logger"] == "werkzeug"]
    assert any("/feed/…" in m for m in access) and any("[personnummer]" in m for m in access)
    routes = {line.get("route") for line in lines if line["logger"] == "calendar_app.requests"}
    assert {"/feed/<token>.ics", "/login", "/api/v1/push/bookings/<external_id>"} <= routes


# --- metrics --------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_and_status_never_by_path(client, session, now):
    world = build_world(session, now)
    client.get("/livez")
    client.get("/livez")
    client.get(f"/people/{world.person_id}/week")  # not signed in: to the login page
    client.get(f"/no/such/{world.pnr}")
    client.put("/livez")
    samples = _metrics(client)
    requests = "calendar_app_http_requests_total"
    assert _value(samples, requests, method="GET", route="/livez", status="200") == 2
    week = "/people/<int:person_id>/week"
    assert _value(samples, requests, method="GET", route=week, status="302") == 1
    assert _value(samples, requests, method="GET", route="(unmatched)", status="404") == 1
    assert _value(samples, requests, method="PUT", route="(unmatched)", status="405") == 1
    latency = "calendar_app_http_request_duration_seconds_count"
    assert _value(samples, latency, method="GET", route="/livez") == 2
    routes = {dict(labels).get("route") for _, labels in samples if dict(labels).get("route")}
    assert not any(world.pnr in route or "/people/1" in route for route in routes)


def _reminder(world: World, state: ReminderState, send_in: timedelta) -> Reminder:
    now = NOW
    return Reminder(
        person_id=world.person_id,
        booking_id=world.booking_a,
        visit_start_utc=now + timedelta(days=3),
        rule_label="1 dag före kl. 18.00",
        recipient_label="Alva",
        send_at_utc=now + send_in,
        state=state,
        created_utc=now,
        changed_utc=now,
    )


def _reminders(session, world: World) -> None:
    P, S = ReminderState.PLANNED, ReminderState.SENT
    minutes, days = timedelta(minutes=1), timedelta(days=1)
    for state, send_in in (
        (P, -10 * minutes),  # due
        (P, -2 * minutes),  # due
        (P, -2 * days),  # due for two days (a stopped scheduler), before the state window
        (P, 2 * days),  # ahead
        (ReminderState.SENDING, -1 * minutes),
        (S, -3 * 60 * minutes),
        (S, -4 * 60 * minutes),
        (S, -3 * days),  # history: outside the 24 hours counted by state
        (ReminderState.DELIVERED, -5 * 60 * minutes),
        (ReminderState.FAILED, -6 * 60 * minutes),
        (ReminderState.FAILED, -7 * 60 * minutes),
        (ReminderState.WITHDRAWN, days),
    ):
        session.add(_reminder(world, state, send_in))
    session.commit()


def test_metrics_reflect_reminder_states_and_the_due_queue_from_the_rows(client, session, now):
    world = build_world(session, now)

    def by_state() -> dict[str, float | None]:
        samples = _metrics(client)
        return {
            state.value: _value(samples, "calendar_app_reminders", state=state.value)
            for state in ReminderState
        }

    before = by_state()  # the world's imports planned some (withdrawn: no mobile number)
    _reminders(session, world)
    after = by_state()
    assert {state: after[state] - before[state] for state in after} == {  # type: ignore[operator]
        "planned": 3,
        "sending": 1,
        "sent": 2,
        "delivered": 1,
        "failed": 2,
        "withdrawn": 1,
    }
    samples = _metrics(client)
    assert _value(samples, "calendar_app_reminders_due") == 3
    oldest = _value(samples, "calendar_app_reminders_due_oldest_age_seconds")
    assert oldest is not None and 2 * 86400 <= oldest < 2 * 86400 + 120


def _source(session, world: World, unit: int, name: str, adapter: str, **state) -> None:
    now = NOW
    session.add(
        Source(
            provider_id=unit,
            person_id=world.person_id,
            name=name,
            adapter=adapter,
            settings='{"display": "https://bokning.example.se/…"}',
            created_utc=now - timedelta(days=30),
            **state,
        )
    )


def _sources(session, world: World) -> None:
    now = NOW
    hours = timedelta(hours=1)
    _source(session, world, world.unit_a, "a1", "ics_url", state=SourceState.OK,
            last_success_utc=now - 0.2 * hours)  # fmt: skip
    _source(session, world, world.unit_a, "a2", "ics_url", state=SourceState.FAILING,
            failures=4, last_success_utc=now - 5 * hours)  # fmt: skip
    _source(session, world, world.unit_a, "a3", "ics_url", state=SourceState.STALE,
            failures=1, last_success_utc=now - 1 * hours)  # fmt: skip
    _source(session, world, world.unit_b, "b1", "caldav", state=SourceState.OK,
            last_success_utc=now - 0.5 * hours)  # fmt: skip
    _source(
        session, world, world.unit_b, "b2", "caldav", state=SourceState.OK, enabled=False
    )  # fmt: skip  (paused: not counted)
    session.commit()


def test_metrics_show_sync_state_lag_and_failures_per_unit_and_adapter(client, session, now):
    world = build_world(session, now)
    _sources(session, world)
    samples = _metrics(client)
    psyk = {"provider": "Vuxenpsykiatrin Växjö", "adapter": "ics_url"}
    home = {"provider": "Boendestöd Växjö kommun", "adapter": "caldav"}
    states = {
        state.value: _value(samples, "calendar_app_sources", **psyk, state=state.value)
        for state in SourceState
    }
    assert states == {"new": 0, "ok": 1, "stale": 1, "failing": 1, "held": 0}
    assert _value(samples, "calendar_app_sources", **home, state="ok") == 1
    assert _value(samples, "calendar_app_source_failures", **psyk) == 5
    lag = _value(samples, "calendar_app_source_sync_lag_seconds", **psyk)
    assert lag is not None and 5 * 3600 <= lag < 5 * 3600 + 120
    home_lag = _value(samples, "calendar_app_source_sync_lag_seconds", **home)
    assert home_lag is not None and 1800 <= home_lag < 1800 + 120
    # One series per unit and adapter kind, no source ids, no person.
    labels = {key for name, label_set in samples if name.startswith("calendar_app_")
              for key, _ in label_set}  # fmt: skip
    assert labels <= {"provider", "adapter", "state", "method", "route", "status", "le"}
    text = client.get("/metrics").get_data(as_text=True)
    for personal in (world.pnr, "Alva", "bokning.example.se", "+4670"):
        assert personal not in text


def test_metrics_are_refused_without_the_token_or_from_another_host(app, client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 403  # loopback, but on behalf of someone elsewhere
    assert client.get("/metrics").status_code == 200
    app.config["METRICS_TOKEN"] = TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "calendar_app" not in refused.get_data(as_text=True)
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}-not"})
    assert wrong.status_code == 401
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert _value(_metrics(client, headers=right, environ_base=remote), "calendar_app_database_up")


def test_a_short_metrics_token_stops_start_up():
    from calendar_app.config import ConfigError

    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app({"DATABASE_URL": "sqlite://", "METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        create_app({"DATABASE_URL": "sqlite://", "LOG_FORMAT": "xml"})


# Two worker processes as gunicorn makes them: the app is built, then a fork serves three
# requests and is gone; the other serves one and answers the scrape.
WORKERS = """
import os, sys
from calendar_app import create_app
from calendar_app.migrations import upgrade
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "x"})
upgrade(app.extensions["engine"])
child = os.fork()
if child == 0:
    client = app.test_client()
    ok = all(client.get("/livez").status_code == 200 for _ in range(3))
    os._exit(0 if ok else 1)
assert os.waitpid(child, 0)[1] == 0
client = app.test_client()
assert client.get("/livez").status_code == 200
sys.stdout.write(client.get("/metrics").get_data(as_text=True))
app.extensions["feed_renderer"].stop()
app.extensions["engine"].dispose()
"""


def test_metrics_sum_the_requests_of_every_worker_process(tmp_path):
    """As under gunicorn: with PROMETHEUS_MULTIPROC_DIR set, each worker process writes its
    counts to files, and a scrape in any worker sums them all, a finished one's too."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", WORKERS, f"sqlite:///{tmp_path}/db.sqlite3"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    samples = [s for f in text_string_to_metric_families(done.stdout) for s in f.samples]
    livez = [
        s.value
        for s in samples
        if s.name == "calendar_app_http_requests_total" and s.labels.get("route") == "/livez"
    ]
    assert livez == [4.0]  # summed over both processes, and exported once
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process
    assert any(s.name == "calendar_app_database_up" and s.value == 1 for s in samples)


def test_gunicorn_writes_json_lines_that_share_the_request_id(tmp_path):
    """The production configuration with CALENDAR_APP_LOG_FORMAT=json: gunicorn's own
    lines are JSON, its access line has the id the app echoed, and no token is in it."""
    database = f"sqlite:///{tmp_path}/db.sqlite3"
    engine = create_engine(database)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "CALENDAR_APP_DATABASE_URL": database,
        "CALENDAR_APP_LOG_FORMAT": "json",
        "CALENDAR_APP_BIND": f"127.0.0.1:{port}",
        "CALENDAR_APP_WEB_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    out = tmp_path / "gunicorn.log"
    with out.open("w") as sink:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                "python:calendar_app.gunicorn_conf",
            ],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, out.read_text()
            try:
                if httpx.get(f"{origin}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        answer = httpx.get(f"{origin}/livez", headers={"X-Request-ID": "probe-17"})
        assert answer.headers["X-Request-ID"] == "probe-17"
        httpx.get(f"{origin}/feed/n0tAT0kenButSecret.ics")
        httpx.get(f"{origin}/nothing", params={"pnr": PERSONNUMMER})
        text = httpx.get(f"{origin}/metrics").text
        assert 'route="/livez",status="200"} 1.0' in text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_logger: dict[str, list[dict]] = {}
    for line in lines:
        by_logger.setdefault(line["logger"], []).append(line)
    assert "gunicorn.error" in by_logger
    probe = [line for line in lines if line.get("request_id") == "probe-17"]
    assert {line["logger"] for line in probe} == {"calendar_app.requests", "gunicorn.access"}
    feed = [line for line in by_logger["gunicorn.access"] if "/feed/" in line["message"]]
    assert feed and feed[0].get("request_id")  # read from the atoms before the token was cut
    raw = out.read_text()
    assert "n0tAT0kenButSecret" not in raw and PERSONNUMMER not in raw


# --- the administrator's page ---------------------------------------------------------------


def test_the_admin_health_page_shows_the_figures_in_swedish_and_english(client, session, now):
    world = build_world(session, now)
    _reminders(session, world)
    _sources(session, world)
    log_in(client, "admin")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/admin/health"' in home and "Driftläge" in home
    response = client.get("/admin/health")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Driftläge" in page and "Aktuell (" + HEAD + ")" in page
    assert '<dd id="due-count">3</dd>' in page
    assert '<dd id="due-oldest">2 dygn</dd>' in page
    assert '<td data-state="failed">2</td>' in page and '<td data-state="sent">2</td>' in page
    assert (
        "Vuxenpsykiatrin Växjö" in page and "Boendestöd Växjö kommun" not in page
    )  # only troubled
    assert "för 5 timmar sedan" in page and "Misslyckade hämtningar i rad" in page
    assert re.search(r'<dd id="requests-total">\d+', page)
    assert world.pnr not in page and "Alva" not in page
    client.post("/language", data={"lang": "en"})
    english = client.get("/admin/health").get_data(as_text=True)
    assert "Service health" in english and "5 hours ago" in english and "2 days" in english


@pytest.mark.parametrize("role", ["person", "helper_full", "caregiver"])
def test_the_admin_health_page_is_refused_to_other_roles(client, session, now, role):
    build_world(session, now)
    anonymous = client.get("/admin/health")
    assert anonymous.status_code == 302 and "/login" in anonymous.location
    log_in(client, role)
    assert client.get("/admin/health").status_code == 403


def test_a_scrape_in_a_signed_in_session_reads_the_database(client, session, now):
    # Signing in keeps the request's own transaction open (the session's last use); on
    # SQLite that holds the write lock, and the figures' own session used to wait for it
    # until the busy timeout and then report the database down.
    build_world(session, now)
    session.commit()
    log_in(client, "admin")
    samples = _metrics(client)
    assert _value(samples, "calendar_app_database_up") == 1
    assert _value(samples, "calendar_app_schema_at_head") == 1
