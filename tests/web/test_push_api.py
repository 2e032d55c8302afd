"""The push API: a provider system keeps a person's calendar current by sending its own
bookings (create, update, cancel) with a unit's token, idempotent on its booking id; every
refused request changes nothing stored."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.personnummer import luhn_ok
from calendar_app.models import (
    AuditEvent,
    Booking,
    BookingOrigin,
    BookingStatus,
    CareRelationship,
    ImportRun,
    Person,
    Reminder,
    ReminderState,
    Source,
)
from calendar_app.services import reminders, tokens
from calendar_app.services.erasure import delete_person
from tests.conftest import NOW
from tests.support.helpers import PNR_BO
from tests.support.world import World, build_world, log_in

STOCKHOLM = ZoneInfo("Europe/Stockholm")
BASE = "/api/v1/push/bookings"
PHONE = "+46701112233"
SNAPSHOT_TABLES = (Booking, Reminder, Source, CareRelationship, ImportRun, Person, AuditEvent)


def _local(days: int, hour: int, minute: int = 0) -> datetime:
    """A time ``days`` from the app's today at hour:minute, Stockholm time (the API takes
    its ``now`` from the app's clock, which stands at NOW)."""
    day = NOW.astimezone(STOCKHOLM).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), STOCKHOLM)


def _iso(days: int, hour: int, minute: int = 0) -> str:
    return _local(days, hour, minute).isoformat()


def _forms(pnr: str) -> list[str]:
    """The ways a personnummer can be written: 12 or 10 digits, with or without a dash."""
    return [pnr, pnr[2:], f"{pnr[:8]}-{pnr[8:]}", f"{pnr[2:8]}-{pnr[8:]}"]


def _unregistered_pnr() -> str:
    """A valid personnummer nobody in the world has."""
    stem = "198503041234"[:-1]
    return next(stem + d for d in "0123456789" if luhn_ok((stem + d)[2:]))


@dataclass
class Ctx:
    client: FlaskClient
    session: Session
    world: World
    pnr: str
    headers: dict[str, str]  # unit A, bookings:push
    now: datetime

    def token(self, unit: int | None = None, *scopes: str, revoke: bool = False) -> dict[str, str]:
        made = tokens.create_token(
            self.session,
            name="Planeringssystemet",
            provider_id=unit or self.world.unit_a,
            scopes=list(scopes or ("bookings:push",)),
            created_by="test",
            now=self.now,
        )
        if revoke:
            tokens.revoke_token(self.session, made.id, now=self.now)
        return {"Authorization": f"Bearer {made.secret}"}

    def put(self, external_id: str, headers: dict[str, str] | None = None, **fields: Any):
        body = {
            "personnummer": f"{self.pnr[:8]}-{self.pnr[8:]}",
            "start": _iso(3, 10),
            "end": _iso(3, 10, 45),
            "title": "Boendestöd",
            "location": "Storgatan 3, 352 30 Växjö",
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not ABSENT}
        return self.client.put(
            f"{BASE}/{external_id}", json=body, headers=self.headers if headers is None else headers
        )

    def delete(self, external_id: str, headers: dict[str, str] | None = None):
        return self.client.delete(
            f"{BASE}/{external_id}", headers=self.headers if headers is None else headers
        )

    def get(self, external_id: str, headers: dict[str, str] | None = None):
        return self.client.get(
            f"{BASE}/{external_id}", headers=self.headers if headers is None else headers
        )


ABSENT = object()


@pytest.fixture
def ctx(client, session, now) -> Ctx:
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = PHONE
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    made = tokens.create_token(
        session,
        name="Planeringssystemet",
        provider_id=world.unit_a,
        scopes=["bookings:push"],
        created_by="test",
        now=now,
    )
    headers = {"Authorization": f"Bearer {made.secret}"}
    return Ctx(client, session, world, world.pnr, headers, now)


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a push may touch, in a fixed order."""
    session.rollback()
    rows = {
        model.__tablename__: sorted(
            (tuple(row) for row in session.execute(select(model.__table__)).all()), key=repr
        )
        for model in SNAPSHOT_TABLES
    }
    session.rollback()  # SQLite: an open transaction would hold the write lock
    return rows


def _pushed(session: Session, external_id: str, unit: int) -> list[Booking]:
    session.rollback()
    session.expire_all()  # rows loaded before (and committed, so not expired) are read afresh
    rows = list(
        session.scalars(
            select(Booking)
            .join(Source, Source.id == Booking.source_id)
            .where(Booking.uid == external_id, Source.provider_id == unit, Source.name == "push")
        )
    )
    for row in rows:
        _ = row.source.adapter
    session.commit()  # ends the transaction and keeps the rows loaded
    return rows


def _planned(session: Session, booking_id: int) -> list[Reminder]:
    session.rollback()
    session.expire_all()  # rows loaded before (and committed, so not expired) are read afresh
    rows = list(
        session.scalars(
            select(Reminder).where(
                Reminder.booking_id == booking_id, Reminder.state == ReminderState.PLANNED
            )
        )
    )
    session.commit()
    return rows


# --- keeping a calendar current ---------------------------------------------------------------


def test_a_pushed_booking_shows_in_the_persons_calendar_and_week(ctx):
    created = ctx.put("BS-417", practitioner_name="Sara Holm", transport_needed=True)

    assert created.status_code == 201, created.get_json()
    answer = created.get_json()
    assert answer["result"] == "created" and answer["changed"] == []
    booking = answer["booking"]
    assert booking["external_id"] == "BS-417" and booking["status"] == "booked"
    assert booking["start"] == _iso(3, 10) and booking["person"] == "19900101-****"
    log_in(ctx.client, "person")
    day = _local(3, 10).date()
    calendar = ctx.client.get(
        f"/api/v1/people/{ctx.world.person_id}/calendar"
        f"?from={day.isoformat()}&to={(day + timedelta(days=1)).isoformat()}"
    ).get_json()
    shown = [o for o in calendar["occurrences"] if o["uid"] == "BS-417"]
    assert len(shown) == 1
    assert shown[0]["provider"] == "Vuxenpsykiatrin Växjö" and shown[0]["source"] == "push"
    assert shown[0]["title"] == "Boendestöd" and shown[0]["status"] == "confirmed"
    week = ctx.client.get(f"/people/{ctx.world.person_id}/week?start={day.isoformat()}")
    assert "Boendestöd" in week.get_data(as_text=True)
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    assert row.origin == BookingOrigin.SYNCED and row.source.adapter == "push"
    assert row.source.person_id is None and row.first_seen_utc == row.last_seen_utc
    assert (row.practitioner_name, row.transport_needed) == ("Sara Holm", True)
    assert _planned(ctx.session, row.id), "the default reminder is planned"


def test_a_first_push_opens_a_care_relationship_as_a_first_booking_does(ctx):
    unit_c = ctx.token(ctx.world.unit_c)

    assert ctx.put("VC-1", headers=unit_c).status_code == 201

    ctx.session.rollback()
    related = ctx.session.scalars(
        select(CareRelationship).where(
            CareRelationship.person_id == ctx.world.person_id,
            CareRelationship.provider_id == ctx.world.unit_c,
        )
    ).one()
    assert related.created_by == "source" and related.ended_utc is None


def test_moving_a_pushed_booking_replans_its_reminders(ctx):
    ctx.put("BS-417", sequence=1)
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    before = {(r.visit_start_utc, r.send_at_utc) for r in _planned(ctx.session, row.id)}

    moved = ctx.put("BS-417", start=_iso(4, 13), end=_iso(4, 14), sequence=2)

    assert moved.status_code == 200
    assert moved.get_json()["result"] == "updated"
    assert moved.get_json()["changed"] == ["start", "end", "sequence"]
    after = {(r.visit_start_utc, r.send_at_utc) for r in _planned(ctx.session, row.id)}
    # The default rule: the day before at 18.00, local time.
    assert before == {(_local(3, 10), _local(2, 18))}
    assert after == {(_local(4, 13), _local(3, 18))}
    assert _pushed(ctx.session, "BS-417", ctx.world.unit_a)[0].sequence == 2


def test_the_same_push_twice_is_one_booking_and_the_second_writes_nothing(ctx):
    first = ctx.put("BS-417", sequence=1)
    before = snapshot(ctx.session)

    again = ctx.put("BS-417", sequence=1)
    without_sequence = ctx.put("BS-417")

    assert first.status_code == 201
    for answer in (again, without_sequence):
        assert answer.status_code == 200
        assert answer.get_json()["result"] == "unchanged" and answer.get_json()["changed"] == []
        assert answer.get_json()["booking"] == first.get_json()["booking"]
    assert snapshot(ctx.session) == before  # not even last_seen or the calendar version
    assert len(_pushed(ctx.session, "BS-417", ctx.world.unit_a)) == 1


def test_cancelling_keeps_the_booking_withdraws_its_reminders_and_again_changes_nothing(ctx):
    ctx.put("BS-417")
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    assert _planned(ctx.session, row.id)

    cancelled = ctx.delete("BS-417")
    before = snapshot(ctx.session)
    again = ctx.delete("BS-417")

    assert cancelled.status_code == 200
    assert cancelled.get_json()["result"] == "cancelled"
    assert cancelled.get_json()["booking"]["status"] == "cancelled"
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    assert row.status == BookingStatus.CANCELLED and _planned(ctx.session, row.id) == []
    assert again.status_code == 200 and again.get_json()["result"] == "unchanged"
    assert snapshot(ctx.session) == before
    assert ctx.get("BS-417").get_json()["status"] == "cancelled"
    rebooked = ctx.put("BS-417")
    assert rebooked.status_code == 200 and rebooked.get_json()["changed"] == ["status"]
    assert _planned(ctx.session, row.id)


def test_a_push_with_status_cancelled_cancels_like_delete(ctx):
    ctx.put("BS-417")

    answer = ctx.put("BS-417", status="cancelled")

    assert answer.get_json()["changed"] == ["status"]
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    assert row.status == BookingStatus.CANCELLED and _planned(ctx.session, row.id) == []


def test_an_older_sequence_is_refused_and_a_newer_one_applies(ctx):
    ctx.put("BS-417", sequence=3)
    before = snapshot(ctx.session)

    older = ctx.put("BS-417", start=_iso(5, 9), end=_iso(5, 10), sequence=2)

    assert older.status_code == 409
    assert older.get_json()["error"]["code"] == "push.sequence_old"
    assert snapshot(ctx.session) == before
    newer = ctx.put("BS-417", start=_iso(5, 9), end=_iso(5, 10), sequence=4)
    assert newer.status_code == 200 and newer.get_json()["booking"]["sequence"] == 4
    kept = ctx.put("BS-417", start=_iso(5, 9), end=_iso(5, 10), title="Hembesök")
    assert kept.get_json()["changed"] == ["title"]
    assert kept.get_json()["booking"]["sequence"] == 4


def test_a_push_never_cancels_the_units_other_bookings(ctx):
    ctx.put("BS-1")
    ctx.put("BS-2", start=_iso(4, 10), end=_iso(4, 11))

    ctx.put("BS-1", title="Flyttat")

    assert ctx.get("BS-2").get_json()["status"] == "booked"
    assert ctx.get("BS-1").get_json()["title"] == "Flyttat"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (_iso(3, 10), _iso(3, 10, 45)),
        (
            _local(3, 10).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            _local(3, 10, 45).astimezone(UTC).strftime("%Y-%m-%dt%H:%Mz"),
        ),
        (
            _local(3, 10).strftime("%Y-%m-%d %H:%M:%S.000%z"),
            _local(3, 10, 45).strftime("%Y-%m-%dT%H:%M%z"),
        ),
    ],
    ids=["offset", "utc", "basic-offset"],
)
def test_times_with_an_offset_or_z_are_the_same_instant(ctx, start, end):
    answer = ctx.put("BS-417", start=start, end=end)

    assert answer.status_code == 201, answer.get_json()
    assert (answer.get_json()["booking"]["start"], answer.get_json()["booking"]["end"]) == (
        _iso(3, 10),
        _iso(3, 10, 45),
    )


def test_every_field_is_stored_and_shown_back(ctx):
    answer = ctx.put(
        "BS-417",
        status="tentative",
        description="Ta med läkemedelslistan",
        practitioner_name="Sara Holm",
        mode="video",
        interpreter_language="arabiska",
        transport_needed=True,
        cancellation_terms="Avboka senast dagen före kl. 12",
        no_show_fee="400 kr",
        sequence=7,
    ).get_json()["booking"]

    assert {k: answer[k] for k in ("status", "mode", "interpreter_language", "no_show_fee")} == {
        "status": "tentative",
        "mode": "video",
        "interpreter_language": "arabiska",
        "no_show_fee": "400 kr",
    }
    (row,) = _pushed(ctx.session, "BS-417", ctx.world.unit_a)
    assert row.interpreter and row.status == BookingStatus.TENTATIVE and row.sequence == 7
    assert row.cancellation_terms == "Avboka senast dagen före kl. 12"


def test_reading_back_shows_the_personnummer_masked_and_is_audited(ctx):
    ctx.put("BS-417")
    ctx.session.rollback()
    audited = len(ctx.session.scalars(select(AuditEvent)).all())
    ctx.session.rollback()

    answer = ctx.get("BS-417")

    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.get_json()["person"] == "19900101-****"
    assert not [form for form in _forms(ctx.pnr) if form in text]
    ctx.session.rollback()
    events = ctx.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert len(events) == audited + 1
    assert events[-1].person_id == ctx.world.person_id
    assert events[-1].actor_label == "API-nyckel Planeringssystemet"


def test_another_unit_has_its_own_ids_and_never_touches_these(ctx):
    ctx.put("BS-417")
    unit_b = ctx.token(ctx.world.unit_b)
    before = snapshot(ctx.session)

    unseen = ctx.get("BS-417", headers=unit_b)
    untouched = ctx.delete("BS-417", headers=unit_b)

    assert (unseen.status_code, untouched.status_code) == (404, 404)
    assert untouched.get_json()["error"]["code"] == "booking.not_found"
    assert snapshot(ctx.session) == before
    own = ctx.put("BS-417", headers=unit_b, start=_iso(6, 9), end=_iso(6, 10))
    assert own.status_code == 201
    assert ctx.get("BS-417").get_json()["start"] == _iso(3, 10)
    assert ctx.get("BS-417", headers=unit_b).get_json()["start"] == _iso(6, 9)


def test_an_erased_persons_pushed_bookings_are_gone(ctx):
    ctx.put("BS-417")
    delete_person(ctx.session, ctx.world.person_id, now=ctx.now)

    assert ctx.get("BS-417").status_code == 404
    refused = ctx.put("BS-417")
    assert refused.status_code == 404
    assert refused.get_json()["error"]["code"] == "person.not_found"


@pytest.mark.parametrize("app_config", [{"RATELIMIT_API": "3 per minute"}])
def test_pushes_are_rate_limited_like_the_rest_of_the_api(ctx):
    answers = [ctx.put("BS-417") for _ in range(4)]

    assert [a.status_code for a in answers] == [201, 200, 200, 429]
    assert answers[-1].get_json()["error"]["code"] == "rate.limited"


def test_the_personnummer_is_in_no_log_line(ctx, caplog):
    forms = _forms(ctx.pnr)
    with caplog.at_level(logging.DEBUG):
        ctx.put("BS-417")
        ctx.put("BS-417", start=_iso(3, 11), end=_iso(3, 12))
        ctx.put("BS-417", personnummer=ctx.pnr, start="2026-12-02T10:00:00")
        ctx.put("BS-417", personnummer=ctx.pnr[:-1] + "0")
        ctx.put("BS-9", personnummer=PNR_BO, title="x" * 600)
        ctx.client.put(
            f"{BASE}/BS-1", json={"personnummer": ctx.pnr, ctx.pnr: 1}, headers=ctx.headers
        )
        ctx.get("BS-417")
        ctx.delete("BS-417")
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not [line for line in logged if any(form in line for form in forms)]


def test_no_push_url_carries_a_personnummer(app):
    paths = [rule.rule for rule in app.url_map.iter_rules() if "/push/" in rule.rule]
    assert paths and all("personnummer" not in p and "person" not in p for p in paths)
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    operations = doc["paths"]["/api/v1/push/bookings/{external_id}"]
    assert set(operations) == {"put", "get", "delete"}
    for operation in operations.values():
        assert [p["name"] for p in operation["parameters"]] == ["external_id"]
    examples = operations["put"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"booked", "moved"} <= set(examples)


def _at_once(*sends: Callable[[], Any]) -> list[int]:
    """Send requests from threads released together; their status codes, sorted."""
    barrier = threading.Barrier(len(sends))
    codes: list[int] = []

    def run(send: Callable[[], Any]) -> None:
        barrier.wait()
        codes.append(send().status_code)

    threads = [threading.Thread(target=run, args=(send,)) for send in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(codes)


@pytest.mark.databases("sqlite", "postgresql")
def test_one_id_pushed_for_two_people_at_once_is_stored_for_one(app, ctx):
    ctx.put("BS-0")  # the unit's push source exists: only its lock keeps the pushes apart
    clients = [app.test_client() for _ in range(8)]
    people = [ctx.pnr, PNR_BO] * 4

    codes = _at_once(
        *[(lambda c=c, p=p: _put_with(c, ctx, p)) for c, p in zip(clients, people, strict=True)]
    )

    # One person wins; the others' pushes of that person are unchanged, the rest refused.
    assert codes == [200, 200, 200, 201, 409, 409, 409, 409]
    assert len(_pushed(ctx.session, "BS-417", ctx.world.unit_a)) == 1


@pytest.mark.databases("sqlite", "postgresql")
def test_a_units_first_two_pushes_at_once_share_one_push_source(app, ctx):
    first, second = app.test_client(), app.test_client()

    codes = _at_once(
        lambda: _put_with(first, ctx, ctx.pnr, "BS-1"),
        lambda: _put_with(second, ctx, PNR_BO, "BS-2"),
    )

    assert codes == [201, 201]
    ctx.session.rollback()
    sources = ctx.session.scalars(
        select(Source).where(Source.provider_id == ctx.world.unit_a, Source.name == "push")
    ).all()
    ctx.session.rollback()
    assert len(sources) == 1


def _put_with(client: FlaskClient, ctx: Ctx, pnr: str, external_id: str = "BS-417") -> Any:
    body = {"personnummer": pnr, "start": _iso(3, 10), "end": _iso(3, 11)}
    return client.put(f"{BASE}/{external_id}", json=body, headers=ctx.headers)


def test_the_documented_examples_are_accepted(app, ctx):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    put = doc["paths"]["/api/v1/push/bookings/{external_id}"]["put"]
    examples = put["requestBody"]["content"]["application/json"]["examples"]

    for days, name in enumerate(["booked", "moved", "interpreter"], start=2):
        body = {**examples[name]["value"], "start": _iso(days, 10), "end": _iso(days, 11)}
        answer = ctx.client.put(f"{BASE}/EX-{name}", json=body, headers=ctx.headers)
        assert answer.status_code == 201, (name, answer.get_json())


# --- every refusal changes nothing ------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    send: Callable[[Ctx], Any]
    status: int
    code: str
    prepare: Callable[[Ctx], None] | None = None


def _raw(data: str, content_type: str) -> Callable[[Ctx], Any]:
    return lambda c: c.client.put(
        f"{BASE}/BS-417", data=data, content_type=content_type, headers=c.headers
    )


def _body(**fields: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.put("BS-417", **fields)


def _erase_bo(c: Ctx) -> None:
    delete_person(c.session, c.world.other_person_id, now=c.now)


REFUSALS = {
    "not json": Refusal(_raw("start=10", "text/plain"), 415, "request.json"),
    "broken json": Refusal(_raw('{"start": ', "application/json"), 415, "request.json"),
    "a json list": Refusal(_raw("[]", "application/json"), 415, "request.json"),
    "missing personnummer": Refusal(_body(personnummer=ABSENT), 400, "push.field_missing"),
    "missing end": Refusal(_body(end=None), 400, "push.field_missing"),
    "bad checksum": Refusal(_body(personnummer="19900101-2386"), 400, "personnummer.checksum"),
    "not a personnummer": Refusal(_body(personnummer="Alva"), 400, "personnummer.format"),
    "personnummer a number": Refusal(_body(personnummer=199001012385), 400, "push.field_type"),
    "unregistered person": Refusal(
        lambda c: c.put("BS-417", personnummer=_unregistered_pnr()), 404, "person.not_found"
    ),
    "erased person": Refusal(
        lambda c: c.put("BS-417", personnummer=PNR_BO), 404, "person.not_found", _erase_bo
    ),
    "time without zone": Refusal(_body(start="2026-12-02T10:00:00"), 400, "push.time_zone"),
    "a date only": Refusal(_body(start="2026-12-02"), 400, "push.time_format"),
    "no real offset": Refusal(_body(start="2026-12-02T10:00:00+25:00"), 400, "push.time_format"),
    "no real date": Refusal(_body(start="2026-02-30T10:00:00Z"), 400, "push.time_format"),
    "end before start": Refusal(_body(end=_iso(3, 9)), 400, "push.time_order"),
    "end at start": Refusal(_body(end=_iso(3, 10)), 400, "push.time_order"),
    "longer than two weeks": Refusal(_body(end=_iso(20, 10)), 400, "push.time_order"),
    "years ahead": Refusal(
        _body(start="2031-01-01T10:00:00Z", end="2031-01-01T11:00:00Z"), 400, "push.time_range"
    ),
    "unknown field": Refusal(_body(titel="Boendestöd"), 400, "push.field_unknown"),
    "start a number": Refusal(_body(start=20261202), 400, "push.field_type"),
    "title a list": Refusal(_body(title=["a"]), 400, "push.field_type"),
    "transport a string": Refusal(_body(transport_needed="yes"), 400, "push.field_type"),
    "sequence a string": Refusal(_body(sequence="2"), 400, "push.sequence"),
    "sequence negative": Refusal(_body(sequence=-1), 400, "push.sequence"),
    "sequence too big": Refusal(_body(sequence=2**31), 400, "push.sequence"),
    "sequence a boolean": Refusal(_body(sequence=True), 400, "push.sequence"),
    "bad mode": Refusal(_body(mode="teleport"), 400, "push.mode"),
    "bad status": Refusal(_body(status="confirmed"), 400, "push.status"),
    "status a dict": Refusal(_body(status={}), 400, "push.status"),
    "title too long": Refusal(_body(title="x" * 501), 400, "push.too_long"),
    "language too long": Refusal(_body(interpreter_language="x" * 51), 400, "push.too_long"),
    "control character": Refusal(_body(title="Bo\x00ende"), 400, "push.text"),
    "lone surrogate": Refusal(
        _raw(
            '{"personnummer": "19900101-2385", "start": "2026-12-02T10:00:00Z", '
            '"end": "2026-12-02T11:00:00Z", "title": "\\ud800"}',
            "application/json",
        ),
        400,
        "push.text",
    ),
    "id with a space": Refusal(lambda c: c.put("BS%20417"), 400, "push.external_id"),
    "id with other letters": Refusal(lambda c: c.put("bokning-ä"), 400, "push.external_id"),
    "id too long": Refusal(lambda c: c.put("x" * 201), 400, "push.external_id"),
    "same id for another person": Refusal(
        lambda c: c.put("BS-417", personnummer=PNR_BO), 409, "push.other_person"
    ),
    "older sequence": Refusal(_body(sequence=1), 409, "push.sequence_old"),
    "another unit reads": Refusal(
        lambda c: c.get("BS-417", c.token(c.world.unit_b)), 404, "booking.not_found"
    ),
    "another unit cancels": Refusal(
        lambda c: c.delete("BS-417", c.token(c.world.unit_b)), 404, "booking.not_found"
    ),
    "cancel an unknown id": Refusal(lambda c: c.delete("BS-9"), 404, "booking.not_found"),
    "token without the scope": Refusal(
        lambda c: c.put("BS-417", c.token(None, "calendar:read", "visits:write")),
        403,
        "token.scope",
    ),
    "revoked token": Refusal(
        lambda c: c.put("BS-417", c.token(None, revoke=True)), 401, "auth.token_invalid"
    ),
    "no token": Refusal(
        lambda c: c.client.put(f"{BASE}/BS-417", json={"personnummer": c.pnr}),
        401,
        "auth.required",
    ),
    "a signed-in caregiver": Refusal(
        lambda c: (log_in(c.client, "caregiver"), c.put("BS-417", headers={}))[1],
        403,
        "access.denied",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_push_gets_a_clear_code_and_changes_nothing(ctx, case):
    refusal = REFUSALS[case]
    assert ctx.put("BS-417", sequence=2).status_code == 201  # something to protect
    if refusal.prepare:
        refusal.prepare(ctx)
    before = snapshot(ctx.session)

    response = refusal.send(ctx)

    assert response.status_code == refusal.status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == refusal.code and error["message"]
    assert not [form for form in _forms(ctx.pnr) if form in error["message"]]
    assert snapshot(ctx.session) == before
