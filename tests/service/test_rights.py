"""The person's rights: a copy of all their data (JSON and iCalendar), and erasure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calendar_app import sealing
from calendar_app.domain.bookings import ReadResult, read_to_json
from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    AuditEvent,
    Booking,
    CareRelationship,
    HelperGrant,
    ImportRun,
    Person,
    PersonPreferences,
    PersonTimeWindow,
    ProviderKind,
    ReviewState,
    Source,
    SourceReview,
    TimeWindowKind,
    UnitConsent,
    User,
    UserSession,
)
from calendar_app.services import erasure
from calendar_app.services.access import Actor
from calendar_app.services.accounts import check_session, log_in
from calendar_app.services.calendar import local_midnight, merged_calendar, read_calendar
from calendar_app.services.directory import get_or_add_provider
from calendar_app.services.erasure import delete_person
from calendar_app.services.export import export_person_data, export_person_ics
from calendar_app.services.settings import invite_helper, set_unit_consent
from tests.support.helpers import do_import, event, vcalendar
from tests.support.world import PASSWORD, World, actor, build_world, cheap_hash

SE = ZoneInfo("Europe/Stockholm")
FIRST_DAY, END_DAY = date(2026, 11, 1), date(2027, 2, 1)
PERSON_TABLES = (
    Booking,
    Source,
    SourceReview,
    PersonPreferences,
    PersonTimeWindow,
    UnitConsent,
    CareRelationship,
    HelperGrant,
    ImportRun,
)

# Both databases: erasure across tables (foreign keys and cascades) depend on the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@dataclass
class Scene:
    world: World
    token: str  # the person's signed-in session
    secrets: list[str]  # hashes and tokens that must never leave the database


def _series() -> bytes:
    """A weekly series with one week left out and one visit moved, a day off, a cancellation."""
    weekly = event(
        "serie",
        ";TZID=Europe/Stockholm:20261102T100000",
        ";TZID=Europe/Stockholm:20261102T110000",
        summary="Samtalsserie",
        RRULE="FREQ=WEEKLY;COUNT=10",
    )
    weekly += "\nEXDATE;TZID=Europe/Stockholm:20261109T100000"
    moved = event(
        "serie",
        ";TZID=Europe/Stockholm:20261118T150000",
        ";TZID=Europe/Stockholm:20261118T160000",
        summary="Flyttat samtal",
    )
    moved += "\nRECURRENCE-ID;TZID=Europe/Stockholm:20261116T100000"
    day_off = event("ledig", ";VALUE=DATE:20261224", ";VALUE=DATE:20261225", summary="Julafton")
    cancelled = event(
        "inst", ":20261210T130000Z", ":20261210T140000Z", summary="Inställt", STATUS="CANCELLED"
    )
    return vcalendar(weekly, moved, day_off, cancelled)


@pytest.fixture
def scene(session: Session, now: datetime) -> Scene:
    """The world, plus a series, consents, preferences, audited reads, an invitation and
    a login for the person; the other person has some of each too."""
    world = build_world(session, now)
    alva = session.get(Person, world.person_id)
    bo = session.get(Person, world.other_person_id)
    assert alva is not None and bo is not None
    do_import(session, alva, _series(), now, source="serie")
    do_import(
        session,
        bo,
        vcalendar(event("bo-1", ":20261203T080000Z", ":20261203T083000Z", summary="Provtagning")),
        now,
        provider="Vårdcentralen Teleborg",
    )
    for person in (alva, bo):
        session.add(
            PersonPreferences(
                person_id=person.id,
                max_visits_per_day=2,
                travel_buffer_minutes=30,
                home_address="Storgatan 1",
                changed_utc=now,
            )
        )
    session.add(
        PersonTimeWindow(
            person_id=bo.id,
            kind=TimeWindowKind.SUITABLE,
            weekdays="0,1,2",
            start_time=time(9),
            end_time=time(12),
        )
    )
    session.commit()
    person_actor = actor(session, "person")
    set_unit_consent(
        session,
        person_actor,
        world.person_id,
        world.unit_b,
        others_level="time_place",
        sensitive=True,
        now=now,
    )
    set_unit_consent(
        session,
        actor(session, "other_person"),
        world.other_person_id,
        world.unit_c,
        others_level="busy",
        sensitive=False,
        now=now,
    )
    invite_helper(
        session,
        person_actor,
        world.person_id,
        name="Syster Stina",
        contact="stina@example.se",
        view_level="busy",
        receives_reminders=False,
        manages_settings=False,
        valid_until=None,
        basis="narstaende",
        now=now,
    )
    caregiver = actor(session, "caregiver")
    for reader, person_id in (
        (caregiver, world.person_id),
        (actor(session, "helper_full"), world.person_id),
        (Actor.operator(), world.other_person_id),
    ):
        read_calendar(session, reader, person_id, FIRST_DAY, END_DAY, now=now, max_days=100)
    secret_url = "https://calendar.example.se/private-5e3b1c9d/basic.ics"
    for person in (alva, bo):
        _synced_source(session, person.id, secret_url, now)
    token = log_in(session, "person", PASSWORD, now=now)
    log_in(session, "other_person", PASSWORD, now=now)
    invitation = session.scalars(
        select(HelperGrant.invitation_hash).where(HelperGrant.helper_name == "Syster Stina")
    ).one()
    assert invitation is not None
    token_hashes = list(session.scalars(select(UserSession.token_hash)))
    session.commit()
    return Scene(
        world=world,
        token=token,
        secrets=[cheap_hash(), invitation, token, *token_hashes, secret_url, "private-5e3b1c9d"],
    )


def _synced_source(session: Session, person_id: int, url: str, now: datetime) -> None:
    """One of the person's own calendars (its address sealed) with a change held for review."""
    unit = get_or_add_provider(session, "Min kalender", ProviderKind.PERSONAL)
    source = Source(
        provider_id=unit.id,
        person_id=person_id,
        name="Jobbet",
        adapter="ics_url",
        settings='{"display": "https://calendar.example.se/…"}',
        secrets=sealing.seal({"url": url}, "test-secret"),
        created_utc=now,
    )
    session.add(source)
    session.flush()
    session.add(
        SourceReview(
            source_id=source.id,
            person_id=person_id,
            state=ReviewState.PENDING,
            created_utc=now,
            read_utc=now,
            read_hash="f" * 64,
            payload=read_to_json(ReadResult(bookings=())),
            future_before=3,
            would_cancel=3,
            would_add=0,
            would_update=0,
        )
    )
    session.commit()


def counts(session: Session, person_id: int) -> dict[str, int]:
    """How many rows of each of the person's own tables there are."""
    found = {
        table.__tablename__: session.scalar(
            select(func.count()).select_from(table).where(table.person_id == person_id)
        )
        or 0
        for table in PERSON_TABLES
    }
    session.commit()
    return found


def audit_rows(session: Session) -> list[tuple[Any, ...]]:
    """Every audit row, every column, in order."""
    columns = AuditEvent.__table__.columns
    rows = [
        tuple(getattr(row, c.key) for c in columns)
        for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]
    session.commit()
    return rows


def occurrence_keys(occurrences: list[Any]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (
            occ.uid,
            (occ.start_date if occ.all_day else occ.start).isoformat(),
            occ.status,
            occ.title,
        )
        for occ in occurrences
    )


def ics_occurrences(data: bytes) -> list[tuple[str, str, str, str]]:
    """The occurrences another calendar program would show from the exported file."""
    window = (local_midnight(FIRST_DAY, SE), local_midnight(END_DAY, SE))
    found = []
    for component in recurring_ical_events.of(icalendar.Calendar.from_ical(data)).between(*window):
        start = component["DTSTART"].dt
        if isinstance(start, datetime):
            start = start.astimezone(UTC)
        found.append(
            (
                str(component["UID"]),
                start.isoformat(),
                str(component["STATUS"]).lower(),
                str(component["SUMMARY"]),
            )
        )
    return sorted(found)


def test_the_data_export_holds_every_row_stored_about_the_person(session, now, scene):
    world = scene.world
    data = export_person_data(session, world.person_id, now=now)
    assert not session.in_transaction(), "the read transaction is over"
    stored = counts(session, world.person_id)
    data = json.loads(json.dumps(data))
    assert data["exported_utc"] == "2026-11-23T09:00:00+00:00"
    assert data["person"]["personnummer"] == world.pnr
    assert data["person"]["name"] == "Alva Lindqvist"
    assert len(data["bookings"]) == stored["booking"]
    assert {b["uid"] for b in data["bookings"]} >= {"psyk", "hem", "serie", "ledig", "inst"}
    assert {b["status"] for b in data["bookings"] if b["uid"] == "inst"} == {"cancelled"}
    assert {b["unit"] for b in data["bookings"] if b["origin"] == "native"} == {
        "Vuxenpsykiatrin Växjö"
    }
    assert len(data["helper_grants"]) == stored["helper_grant"] == 6
    assert [c["unit"] for c in data["unit_consents"]] == ["Boendestöd Växjö kommun"]
    assert len(data["care_relationships"]) == stored["care_relationship"] == 2
    assert len(data["import_runs"]) == stored["import_run"] == 3
    assert len(data["time_windows"]) == 1
    [source] = data["sources"]
    assert (source["unit"], source["name"], source["address"]) == (
        "Min kalender",
        "Jobbet",
        "https://calendar.example.se/…",
    )
    assert [r["would_cancel"] for r in source["changes_held_for_review"]] == [3]
    assert data["preferences"]["home_address"] == "Storgatan 1"
    (account,) = data["accounts"]
    assert account["username"] == "person" and len(account["sessions"]) == 1
    assert [(e["actor_label"], e["action"]) for e in data["audit_log"]] == [
        ("Caregiver", "calendar.read"),
        ("Helper Full", "calendar.read"),
    ]


def test_the_data_export_holds_no_password_token_or_invitation_hash(session, now, scene):
    text = json.dumps(export_person_data(session, scene.world.person_id, now=now))
    for secret in scene.secrets:
        assert secret not in text
    assert "hash" not in text, "no hash column is exported, not even empty"


def test_the_calendar_file_shows_the_same_visits_as_the_calendar(session, now, scene):
    person_id = scene.world.person_id
    data = export_person_ics(session, person_id, now=now)
    assert not session.in_transaction()
    shown = merged_calendar(session, person_id, FIRST_DAY, END_DAY, zone=SE, max_days=100)
    session.commit()
    exported = ics_occurrences(data)
    assert exported == occurrence_keys(shown)
    series = {start[:16]: title for uid, start, _, title in exported if uid == "serie"}
    assert series["2026-11-18T14:00"] == "Flyttat samtal", "moved to 15:00 local time"
    assert not any(start.startswith(("2026-11-09", "2026-11-16")) for start in series)
    assert len(series) == 9, "ten weeks, one left out"
    assert ("inst", "2026-12-10T13:00:00+00:00", "cancelled", "Inställt") in exported
    assert ("ledig", "2026-12-24", "confirmed", "Julafton") in exported


def test_the_calendar_file_names_the_unit_and_defines_its_time_zone(session, now, scene):
    calendar = icalendar.Calendar.from_ical(
        export_person_ics(session, scene.world.person_id, now=now)
    )
    assert str(calendar["PRODID"]) == "-//Personkalendern//Export//SV"
    assert [tz.tz_name for tz in calendar.timezones] == ["Europe/Stockholm"]
    events = calendar.events
    assert len(events) == counts(session, scene.world.person_id)["booking"]
    native = next(e for e in events if e.uid == "native-1@personkalendern")
    assert native.categories == ["Vuxenpsykiatrin Växjö"]
    stamped = native.DTSTAMP
    assert stamped == now
    assert [(e.uid, e.RECURRENCE_ID) for e in events if e.RECURRENCE_ID is not None] == [
        ("serie", datetime(2026, 11, 16, 10, tzinfo=SE))
    ]


def test_deleting_removes_the_persons_data_and_keeps_the_audit_log(session, now, scene):
    world = scene.world
    before = counts(session, world.person_id)
    audit_before = audit_rows(session)
    assert len(audit_before) == 3, "two reads of the person's calendar, one of the other's"
    report = delete_person(session, world.person_id, now=now)
    assert report.bookings == before["booking"] and report.helper_grants == 6
    assert report.sessions_ended == 1 and report.accounts_scrubbed == 1
    assert counts(session, world.person_id) == dict.fromkeys(before, 0)
    assert audit_rows(session) == audit_before
    person = session.get(Person, world.person_id)
    assert person is not None
    assert (person.name, person.phone_e164, person.deleted_utc) == ("Raderad person", None, now)
    assert person.personnummer == world.pnr, "the audit log still says whose calendar was read"
    account = session.scalars(select(User).where(User.person_id == world.person_id)).one()
    assert account.username == f"deleted-{account.id}"
    assert (account.display_name, account.active, account.staff_id) == (
        "Raderat konto",
        False,
        None,
    )
    session.commit()


def test_deleting_leaves_the_other_persons_data_untouched(session, now, scene):
    other = scene.world.other_person_id
    before = export_person_data(session, other, now=now)
    assert counts(session, other)["booking"] == 1
    delete_person(session, scene.world.person_id, now=now)
    assert export_person_data(session, other, now=now) == before
    log_in(session, "other_person", PASSWORD, now=now)


def test_a_deleted_persons_account_can_no_longer_sign_in(session, now, scene):
    delete_person(session, scene.world.person_id, now=now)
    assert check_session(session, scene.token, now=now).reason == "ended"
    with pytest.raises(DomainError) as refused:
        log_in(session, "person", PASSWORD, now=now)
    assert refused.value.code == "login.failed"
    token_hash = hashlib.sha256(scene.token.encode()).hexdigest()
    ended = session.scalars(
        select(UserSession.ended_utc).where(UserSession.token_hash == token_hash)
    ).one()
    assert ended == now
    session.commit()


def test_the_calendar_is_empty_after_deleting_even_when_it_was_cached(session, now, scene):
    person_id = scene.world.person_id

    def calendar() -> list[Any]:
        found = merged_calendar(session, person_id, FIRST_DAY, END_DAY, zone=SE, max_days=100)
        session.commit()
        return found

    assert calendar()
    delete_person(session, person_id, now=now)
    assert calendar() == []


def test_a_failure_half_way_through_deleting_changes_nothing(session, now, scene, monkeypatch):
    world = scene.world
    before = counts(session, world.person_id), counts(session, world.other_person_id)
    audit_before = audit_rows(session)

    def broken(session: Session, person_id: int, now: datetime) -> None:
        # The accounts are emptied after the person's rows have been deleted.
        left = select(func.count()).select_from(Booking).where(Booking.person_id == person_id)
        assert session.scalar(left) == 0
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "_scrub_accounts", broken)
    with pytest.raises(RuntimeError):
        delete_person(session, world.person_id, now=now)
    assert not session.in_transaction(), "rolled back, the person's lock released"
    assert (counts(session, world.person_id), counts(session, world.other_person_id)) == before
    assert audit_rows(session) == audit_before
    person = session.get(Person, world.person_id)
    assert person is not None and person.name == "Alva Lindqvist" and person.deleted_utc is None
    session.commit()
    log_in(session, "person", PASSWORD, now=now)
    monkeypatch.undo()
    assert delete_person(session, world.person_id, now=now).bookings == before[0]["booking"]


def test_deleting_twice_is_refused_as_already_deleted(session, now, scene):
    delete_person(session, scene.world.person_id, now=now)
    with pytest.raises(DomainError) as refused:
        delete_person(session, scene.world.person_id, now=now)
    assert refused.value.code == "person.deleted"
    assert not session.in_transaction()


def test_an_unknown_person_is_neither_exported_nor_deleted(session, now):
    for use_case in (export_person_data, export_person_ics, delete_person):
        with pytest.raises(DomainError) as refused:
            use_case(session, 4711, now=now)
        assert refused.value.code == "person.not_found"
        session.rollback()
