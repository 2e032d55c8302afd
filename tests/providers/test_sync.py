"""Live sync of ICS URL sources against a real local HTTP server: sources keep a person's
calendar current, every failure keeps the stored data and warns, mass cancellations are
held for review, claims keep two schedulers apart, secrets stay sealed."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.models import (
    Booking,
    BookingStatus,
    ImportRun,
    ReviewState,
    Source,
    SourceReview,
    SourceState,
)
from calendar_app.providers import ProviderError
from calendar_app.services import sources, sync
from calendar_app.services.access import Actor
from calendar_app.services.booking import VisitDraft, check_visit, reach_by_id, suggest_times
from calendar_app.services.calendar import busy_lookup, read_calendar
from calendar_app.services.source_health import settings_of, source_warnings
from tests.support.feeds import FeedServer
from tests.support.helpers import add_person, event, vcalendar
from tests.support.world import actor as world_actor
from tests.support.world import build_world

SECRET_PATH = "/cal/7f3a9c1e5b2d-secret-token.ics"


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SOURCE_ALLOWED_HOSTS": "127.0.0.1", "SYNC_TIMEOUT_SECONDS": 1}


@pytest.fixture(autouse=True)
def _clean_feeds(feeds: FeedServer):
    feeds.answers.clear()
    feeds.requests.clear()
    feeds.most_at_once.clear()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def later(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def visits(*items: tuple[str, str]) -> bytes:
    """A calendar of one-hour visits: (uid, start as YYYYMMDDTHHMMSSZ)."""
    return vcalendar(
        *(
            event(uid, f":{start}", f":{start[:9]}{int(start[9:11]) + 1:02d}{start[11:]}")
            for uid, start in items
        )
    )


FOUR = visits(
    ("v1", "20261202T090000Z"),
    ("v2", "20261203T090000Z"),
    ("v3", "20261204T090000Z"),
    ("v4", "20261207T090000Z"),
)


def policy(app) -> sync.SyncPolicy:
    return sync.SyncPolicy.from_config(app.config)


def add(app, session: Session, person_id: int, url: str, unit: str | None = "Vuxenpsyk", **kw):
    return sources.add_source(
        session,
        Actor.operator(),
        person_id=person_id,
        adapter="ics_url",
        fields={"url": url, **kw.pop("fields", {})},
        unit_name=unit,
        policy=policy(app),
        now=kw.pop("now"),
        **kw,
    )


def run(app, clock: Clock, worker: str = "w1", source_id: int | None = None):
    return sync.sync_due(
        app.extensions["session_factory"],
        policy(app),
        worker=worker,
        clock=clock,
        source_id=source_id,
    )


def stored(session: Session, person_id: int) -> list[tuple[Any, ...]]:
    """Every stored booking of the person, every column that a read may change."""
    session.expire_all()
    rows = session.scalars(
        select(Booking).where(Booking.person_id == person_id).order_by(Booking.uid)
    ).all()
    result = [
        (
            r.uid,
            r.start_utc,
            r.end_utc,
            r.status,
            r.cancelled_from_utc,
            r.title,
            r.content_hash,
            r.source_id,
        )
        for r in rows
    ]
    session.commit()
    return result


def source_row(session: Session, source_id: int) -> Source:
    session.expire_all()
    row = session.get(Source, source_id)
    assert row is not None
    session.commit()
    return row


@pytest.fixture
def person(session, now):
    return add_person(session, now)


def test_a_source_is_read_kept_current_and_an_unchanged_one_costs_a_304(
    app, session, feeds, person, now
):
    clock = Clock(now)
    source = add(app, session, person.id, feeds.set(SECRET_PATH, FOUR), now=now)

    [first] = run(app, clock)

    assert first.state == "ok" and first.summary is not None and first.summary.added == 4
    assert [r[0] for r in stored(session, person.id)] == ["v1", "v2", "v3", "v4"]
    row = source_row(session, source.id)
    assert row.state == SourceState.OK and row.last_success_utc == now
    assert row.next_due_utc is not None
    assert timedelta(minutes=27) <= row.next_due_utc - now <= timedelta(minutes=33)  # jitter
    assert row.claimed_by == "" and row.claimed_until_utc is None

    assert run(app, clock) == [], "not due again before its interval"
    later = clock.later(minutes=40)
    [second] = run(app, clock)
    assert second.unchanged, "the server answered 304 to the stored ETag"
    confirmed = session.scalars(select(Booking.last_seen_utc).where(Booking.uid == "v1")).one()
    session.commit()
    assert confirmed == later, "a 304 confirms what is stored"

    moved = visits(
        ("v1", "20261202T130000Z"),
        ("v2", "20261203T090000Z"),
        ("v3", "20261204T090000Z"),
        ("v4", "20261207T090000Z"),
        ("v5", "20261208T090000Z"),
    )
    feeds.set(SECRET_PATH, moved)
    clock.later(minutes=40)
    [third] = run(app, clock)
    assert third.summary is not None
    assert (third.summary.added, third.summary.updated) == (1, 1)
    v1 = [r for r in stored(session, person.id) if r[0] == "v1"][0]
    assert v1[1].hour == 13
    runs = session.scalars(select(ImportRun).where(ImportRun.source_id == source.id)).all()
    assert len(runs) == 2, "a poll that changed nothing keeps no import run"


FAILURES = [
    pytest.param({"status": 503, "body": b"Service Unavailable"}, "source.http", id="5xx"),
    pytest.param({"delay": 3.0, "body": FOUR}, "source.timeout", id="timeout"),
    pytest.param(
        {"body": b"<!doctype html><title>Logga in</title>", "content_type": "text/html"},
        "source.not_calendar",
        id="html",
    ),
    pytest.param({"body": b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"}, "ics.damaged", id="parse"),
    pytest.param({"body": b""}, "ics.empty", id="empty-body"),
]


@pytest.mark.parametrize(("answer", "code"), FAILURES)
def test_a_failed_read_keeps_the_stored_data_and_warns_the_person(
    app, session, client, feeds, person, now, answer, code
):
    clock = Clock(now)
    url = feeds.set("/f.ics", FOUR)
    source = add(app, session, person.id, url, now=now)
    run(app, clock)
    before = stored(session, person.id)
    assert len(before) == 4

    feeds.set("/f.ics", **answer)
    for attempt in range(1, 4):
        clock.later(hours=1)
        [outcome] = run(app, clock)
        assert outcome.error_code == code
        assert stored(session, person.id) == before, "nothing stored changed"
        row = source_row(session, source.id)
        assert row.failures == attempt and row.last_error_code == code
        assert row.state == (SourceState.FAILING if attempt == 3 else SourceState.STALE)
        assert row.last_success_utc == now, "the last good read is remembered"

    [warning] = source_warnings(session, person.id, include_personal=False)
    session.commit()
    assert (warning.unit, warning.since_utc) == ("Vuxenpsyk", now)
    page = _week_page(app, client, person, now)
    # 09.00 UTC is 10.00 in Stockholm; read on another day than the failure, the date shows.
    assert re.search(
        r"Bokningar från Vuxenpsyk kunde inte hämtas sedan (måndag 23 november kl\. )?10\.00\.",
        page,
    )
    api = client.get(f"/api/v1/people/{person.id}/calendar?from=2026-12-01&to=2026-12-08")
    assert api.get_json()["source_warnings"] == [
        {"unit": "Vuxenpsyk", "state": row.state.value, "since": "2026-11-23T10:00:00+01:00"}
    ]

    feeds.set("/f.ics", FOUR)
    clock.later(hours=2)
    [healed] = run(app, clock)
    assert healed.state == "ok"
    assert source_row(session, source.id).failures == 0
    assert source_warnings(session, person.id, include_personal=False) == []


def test_an_unreachable_server_and_an_oversized_calendar_change_nothing(
    app, session, feeds, person, now
):
    clock = Clock(now)
    unreachable = add(app, session, person.id, "http://127.0.0.1:9/cal.ics", now=now, name="a")
    big = add(app, session, person.id, feeds.set("/big.ics", FOUR), now=now, name="b")
    run(app, clock)
    before = stored(session, person.id)
    app.config["MAX_ICS_BYTES"] = 200
    feeds.set("/big.ics", FOUR + b"\r\n")  # changed, so no 304
    clock.later(hours=1)
    outcomes = {o.source_id: o.error_code for o in run(app, clock)}
    assert outcomes[unreachable.id] == "source.unreachable"
    assert outcomes[big.id] == "ics.too_large"
    assert stored(session, person.id) == before


def _week_page(app, client, person, now) -> str:
    from calendar_app.models import Role, User
    from tests.support.world import cheap_hash

    with app.extensions["session_factory"]() as db:
        if db.scalars(select(User).where(User.username == "alva")).first() is None:
            db.add(
                User(
                    username="alva",
                    display_name="Alva",
                    password_hash=cheap_hash(),
                    role=Role.PERSON,
                    person_id=person.id,
                )
            )
            db.commit()
    client.post("/login", data={"username": "alva", "password": "world-password"})
    response = client.get(f"/people/{person.id}/week?start=2026-12-01")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_an_empty_answer_after_bookings_is_held_and_can_be_discarded_or_applied(
    app, session, feeds, person, now
):
    clock = Clock(now)
    source = add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now)
    run(app, clock)
    before = stored(session, person.id)

    feeds.set("/f.ics", vcalendar())
    clock.later(hours=1)
    [held] = run(app, clock)

    assert held.review_id is not None and held.state == "held"
    assert stored(session, person.id) == before, "a held read changes nothing"
    review = session.get(SourceReview, held.review_id)
    assert (review.would_cancel, review.future_before) == (4, 4)
    session.commit()
    [warning] = source_warnings(session, person.id, include_personal=False)
    session.commit()
    assert warning.state == "held" and warning.review_id == held.review_id

    clock.later(hours=1)
    [again] = run(app, clock)
    assert again.review_id == held.review_id, "the same pending review is refreshed"
    assert feeds.requests["/f.ics"] == 3, "no 304: a held read's ETag was not kept"

    sources.decide_review(session, Actor.operator(), held.review_id, apply=False, now=clock())
    assert stored(session, person.id) == before
    assert source_row(session, source.id).state == SourceState.STALE
    clock.later(hours=1)
    [same] = run(app, clock)
    assert same.error_code == "sync.discarded" and same.review_id is None
    assert stored(session, person.id) == before, "the discarded read is not held again"

    feeds.set("/f.ics", visits(("v9", "20261209T090000Z")))
    clock.later(hours=1)
    [other] = run(app, clock)
    assert other.review_id is not None and other.review_id != held.review_id
    sources.decide_review(session, Actor.operator(), other.review_id, apply=True, now=clock())
    after = {r[0]: r[3] for r in stored(session, person.id)}
    assert after == {
        "v1": BookingStatus.CANCELLED,
        "v2": BookingStatus.CANCELLED,
        "v3": BookingStatus.CANCELLED,
        "v4": BookingStatus.CANCELLED,
        "v9": BookingStatus.CONFIRMED,
    }
    assert source_row(session, source.id).state == SourceState.OK
    with pytest.raises(Exception) as twice:
        sources.decide_review(session, Actor.operator(), other.review_id, apply=True, now=clock())
    assert getattr(twice.value, "code", "") == "review.decided"


@pytest.mark.parametrize(
    ("kept", "held"),
    [
        pytest.param(("v1",), True, id="three-of-four-cancelled"),
        pytest.param(("v1", "v2"), False, id="half-cancelled"),
    ],
)
def test_a_read_cancelling_more_than_the_share_is_held_and_a_normal_one_supersedes(
    app, session, feeds, person, now, kept, held
):
    clock = Clock(now)
    add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now)
    run(app, clock)
    before = stored(session, person.id)
    starts = {"v1": "20261202T090000Z", "v2": "20261203T090000Z"}
    feeds.set("/f.ics", visits(*((uid, starts[uid]) for uid in kept)))
    clock.later(hours=1)
    [outcome] = run(app, clock)
    assert (outcome.review_id is not None) is held
    if not held:
        assert outcome.summary is not None and outcome.summary.cancelled == 2
        return
    assert stored(session, person.id) == before
    feeds.set("/f.ics", FOUR)
    clock.later(hours=1)
    [normal] = run(app, clock)
    assert normal.state == "ok"
    review = session.get(SourceReview, outcome.review_id)
    assert review.state == ReviewState.SUPERSEDED
    session.commit()


def test_past_bookings_do_not_count_and_a_first_empty_read_is_not_held(
    app, session, feeds, person, now
):
    clock = Clock(now)
    add(app, session, person.id, feeds.set("/f.ics", vcalendar()), now=now)
    [first] = run(app, clock)
    assert first.state == "ok", "nothing stored: nothing to protect"
    feeds.set("/f.ics", FOUR)
    clock.later(hours=1)
    run(app, clock)
    clock.now = datetime(2026, 12, 5, 12, 0, tzinfo=now.tzinfo)  # v1-v3 are past
    feeds.set("/f.ics", visits(("v4", "20261207T090000Z"), ("v5", "20261208T090000Z")))
    [outcome] = run(app, clock)
    assert outcome.review_id is None, "only future bookings count; past ones are not cancelled"


@pytest.mark.databases("sqlite", "postgresql")
def test_two_schedulers_never_read_one_source_at_once(app, session, feeds, person, now):
    clock = Clock(now)
    ids = []
    for n in range(6):
        url = feeds.set(f"/s{n}.ics", FOUR, delay=0.2)
        ids.append(add(app, session, person.id, url, now=now, name=f"s{n}").id)
    results: dict[str, list[int]] = {}

    def scheduler(name: str) -> None:
        results[name] = [o.source_id for o in run(app, clock, worker=name)]

    threads = [threading.Thread(target=scheduler, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    read = sorted(results["w0"] + results["w1"])
    assert read == sorted(ids), "each source read by exactly one scheduler"
    assert all(feeds.requests[f"/s{n}.ics"] == 1 for n in range(6))
    assert max(feeds.most_at_once.values()) == 1


@pytest.mark.databases("sqlite", "postgresql")
def test_a_claim_blocks_others_until_it_expires(app, session, feeds, person, now):
    source = add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now)
    factory = app.extensions["session_factory"]
    lease = timedelta(minutes=5)
    assert sync.claim_due(factory, now=now, worker="a", lease=lease, limit=10) == [source.id]
    assert sync.claim_due(factory, now=now, worker="b", lease=lease, limit=10) == []
    assert (
        sync.claim_due(factory, now=now, worker="b", lease=lease, limit=10, source_id=source.id)
        == []
    )
    later = now + timedelta(minutes=6)  # the first scheduler died
    assert sync.claim_due(factory, now=later, worker="b", lease=lease, limit=10) == [source.id]


def test_one_sources_failure_does_not_stop_the_others(
    app, session, feeds, person, now, monkeypatch
):
    clock = Clock(now)
    bad = add(app, session, person.id, feeds.set("/bad.ics", FOUR), now=now, name="bad")
    good = add(app, session, person.id, feeds.set("/good.ics", FOUR), now=now, name="good")
    from calendar_app.providers import ics_url

    real = ics_url.IcsUrlAdapter.read

    def flaky(self, config, window, cursor):
        if config.secrets["url"].endswith("bad.ics"):
            raise RuntimeError("a bug in one adapter")
        return real(self, config, window, cursor)

    monkeypatch.setattr(ics_url.IcsUrlAdapter, "read", flaky)
    outcomes = {o.source_id: o for o in run(app, clock)}
    assert outcomes[bad.id].error_code == "source.internal"
    assert outcomes[good.id].state == "ok"


def test_secrets_are_sealed_never_shown_and_never_logged(app, session, feeds, person, now, caplog):
    caplog.set_level(logging.DEBUG)
    clock = Clock(now)
    url = feeds.set(SECRET_PATH, status=503)
    source = add(
        app,
        session,
        person.id,
        url,
        now=now,
        fields={"username": "kal", "password": "hemligt-lösen"},
    )
    run(app, clock)
    row = source_row(session, source.id)
    assert "secret-token" not in row.settings + row.secrets + row.name
    assert "hemligt" not in row.settings + row.secrets
    assert settings_of(row)["display"] == "http://127.0.0.1/…"
    listed = sources.list_sources(session, person.id)
    session.commit()
    assert "secret-token" not in repr(listed)
    assert "secret-token" not in caplog.text and "hemligt" not in caplog.text
    assert "/cal/" not in caplog.text


def test_a_changed_secret_key_fails_visibly(app, session, feeds, person, now):
    clock = Clock(now)
    source = add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now)
    app.config["SOURCE_SECRET_KEY"] = "another key"
    [outcome] = run(app, clock)
    assert outcome.error_code == "source.secret"
    assert source_row(session, source.id).state == SourceState.STALE


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.se/cal.ics", "source.url"),
        ("https://user:pw@example.se/cal.ics", "source.url"),
        ("http://169.254.169.254/latest/meta-data/", "source.address_blocked"),
        ("http://10.1.2.3/cal.ics", "source.address_blocked"),
        ("http://localhost:8080/cal.ics", "source.address_blocked"),
    ],
)
def test_bad_or_private_addresses_are_refused_when_added(app, session, person, now, url, code):
    with pytest.raises(ProviderError) as refused:
        add(app, session, person.id, url, now=now)
    assert refused.value.code == code
    assert session.scalars(select(Source).where(Source.person_id == person.id)).all() == []
    session.commit()


def test_a_personal_calendar_is_busy_time_that_nobody_else_sees(app, session, feeds, now):
    world = build_world(session, now)
    clock = Clock(now)
    alva = world_actor(session, "person")
    url = feeds.set(
        "/work.ics",
        vcalendar(event("job", ":20261201T120000Z", ":20261201T150000Z", summary="Jobbintervju")),
    )
    sources.add_source(
        session,
        alva,
        person_id=world.person_id,
        adapter="ics_url",
        fields={"url": url},
        unit_name=None,
        name="Jobbet",
        policy=policy(app),
        now=now,
    )
    run(app, clock)
    first, end = datetime(2026, 12, 1).date(), datetime(2026, 12, 2).date()

    own = read_calendar(session, alva, world.person_id, first, end, now=now, max_days=100)
    assert [o.title for o in own.occurrences] == ["Jobbintervju"]
    for reader in ("caregiver", "helper_full"):
        seen = read_calendar(
            session,
            world_actor(session, reader),
            world.person_id,
            first,
            end,
            now=now,
            max_days=100,
        )
        [occ] = seen.occurrences
        assert occ.title == "Upptagen" and occ.provider == "" and occ.detail_hidden
    busy = busy_lookup(
        session,
        world_actor(session, "caregiver"),
        world.person_id,
        first,
        end,
        now=now,
    )
    assert [(b[0].hour, b[1].hour) for b in busy] == [(12, 15)]

    caregiver = world_actor(session, "caregiver")
    reach = reach_by_id(session, caregiver, world.person_id)
    clash = check_visit(
        session,
        caregiver,
        reach,
        VisitDraft(day=first, start=time(14, 0), minutes=60),
        now=now,
    )
    assert [(w.kind, w.hard, w.other) for w in clash.warnings] == [("overlap", True, "Upptagen")]
    suggested = suggest_times(
        session,
        caregiver,
        reach,
        minutes=60,
        first_day=first,
        last_day=first,
        location="",
        now=now,
        limit=20,
    )
    assert suggested, "the rest of the day is free"
    work_start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    work_end = datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert all(s.end <= work_start or s.start >= work_end for s in suggested)


def test_only_the_person_may_add_a_personal_calendar_and_caregivers_only_their_units(
    app, session, feeds, now
):
    world = build_world(session, now)
    url = feeds.set("/f.ics", FOUR)

    def attempt(username: str, unit: str | None) -> str:
        try:
            sources.add_source(
                session,
                world_actor(session, username),
                person_id=world.person_id,
                adapter="ics_url",
                fields={"url": url},
                unit_name=unit,
                name=f"{username}-{unit}",
                policy=policy(app),
                now=now,
            )
        except Exception as exc:
            session.rollback()
            return getattr(exc, "code", type(exc).__name__)
        return "ok"

    assert attempt("person", None) == "ok"
    assert attempt("person", "Vuxenpsykiatrin Växjö") == "access.denied"
    assert attempt("helper_settings", None) == "ok"
    assert attempt("helper_full", None) == "access.denied"
    assert attempt("caregiver", "Vuxenpsykiatrin Växjö") == "ok"
    assert attempt("caregiver", "Boendestöd Växjö kommun") == "access.denied"
    assert attempt("caregiver_unrelated", "Vårdcentralen Teleborg") == "access.denied"
    assert attempt("other_person", None) == "access.denied"


def test_the_same_visit_from_a_file_and_a_source_is_shown_once_with_both_provenances(
    app, session, feeds, person, now
):
    from tests.support.helpers import do_import

    do_import(session, person, visits(("v1", "20261202T090000Z")), now, provider="Vuxenpsyk")
    add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now, name="webbkalender")
    run(app, Clock(now))
    view = read_calendar(
        session,
        Actor.operator(),
        person.id,
        datetime(2026, 12, 2).date(),
        datetime(2026, 12, 3).date(),
        now=now,
        max_days=10,
    )
    [occ] = view.occurrences
    provenances = {occ.source, *(p.source for p in occ.also_from)}
    assert provenances == {"file", "webbkalender"}, "one visit, both provenances, none dropped"


@pytest.mark.databases("sqlite", "postgresql")
def test_one_run_reads_every_due_source_batch_after_batch(app, session, feeds, person, now):
    app.config["SYNC_BATCH"] = 2
    ids = {
        add(app, session, person.id, feeds.set(f"/b{n}.ics", FOUR), now=now, name=f"b{n}").id
        for n in range(5)
    }
    outcomes = run(app, Clock(now))
    assert {o.source_id for o in outcomes} == ids and all(o.state == "ok" for o in outcomes)


@pytest.mark.databases("sqlite", "postgresql")
def test_a_read_whose_claim_was_taken_over_is_skipped(app, session, feeds, person, now):
    source = add(app, session, person.id, feeds.set("/f.ics", FOUR), now=now)
    factory = app.extensions["session_factory"]
    lease = timedelta(minutes=5)
    sync.claim_due(factory, now=now, worker="slow", lease=lease, limit=10)
    later = now + timedelta(minutes=6)
    assert sync.claim_due(factory, now=later, worker="fast", lease=lease, limit=10) == [source.id]
    skipped = sync.sync_claimed(factory, source.id, policy(app), worker="slow", clock=lambda: later)
    assert skipped.state == "skipped" and feeds.requests["/f.ics"] == 0
    done = sync.sync_claimed(factory, source.id, policy(app), worker="fast", clock=lambda: later)
    assert done.state == "ok" and feeds.requests["/f.ics"] == 1
