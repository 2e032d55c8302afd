"""The person's rights end to end: download a copy, delete the account and the data."""

from __future__ import annotations

import icalendar
import pytest
import recurring_ical_events
from sqlalchemy import func, select

from calendar_app.domain.errors import DomainError
from calendar_app.models import AuditEvent, Booking, Person
from calendar_app.services import accounts
from calendar_app.services.directory import add_person
from tests.support.helpers import do_import, event, vcalendar
from tests.support.world import PASSWORD, build_world, log_in


def test_the_person_downloads_everything_as_json_and_as_a_calendar(client, session, now):
    world = build_world(session, now)
    bookings = session.scalar(
        select(func.count()).select_from(Booking).where(Booking.person_id == world.person_id)
    )
    session.commit()
    log_in(client, "person")

    as_json = client.get("/account/export.json")
    as_ics = client.get("/account/export.ics")

    assert as_json.status_code == 200 and as_json.mimetype == "application/json"
    assert as_json.headers["Content-Disposition"].startswith("attachment")
    data = as_json.get_json()
    assert data["person"]["personnummer"] == world.pnr
    assert len(data["bookings"]) == bookings
    assert {g["helper_name"] for g in data["helper_grants"]} >= {"helper_full", "helper_busy"}
    assert as_ics.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(as_ics.data)
    titles = {
        str(e["SUMMARY"])
        for e in recurring_ical_events.of(calendar).between((2026, 12, 1), (2027, 1, 1))
    }
    assert {"Samtal", "Boendestöd", "Uppföljning"} <= titles
    page = client.get("/account").get_data(as_text=True)
    assert "Ladda ner mina uppgifter (JSON)" in page and "Radera mitt konto" in page


def test_deleting_says_what_is_kept_and_asks_for_confirmation(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")

    page = client.get("/account/delete").get_data(as_text=True)
    unconfirmed = client.post("/account/delete", data={"confirm": "ja"})

    assert "Det här sparas, och varför" in page and "Loggen över vem som har sett" in page
    assert unconfirmed.status_code == 400
    assert "Skriv RADERA för att bekräfta. Inget raderades." in unconfirmed.get_data(as_text=True)
    assert session.get(Person, world.person_id).deleted_utc is None
    session.commit()
    assert client.get("/api/v1/me").status_code == 200


def test_deleting_removes_the_calendar_ends_every_session_and_keeps_the_audit_log(
    app, client, session, now, clock
):
    world = build_world(session, now)
    caregiver = app.test_client()
    log_in(caregiver, "caregiver")
    week = f"/people/{world.person_id}/week"
    assert caregiver.get(week).status_code == 200  # an audited read
    audit_before = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    session.commit()
    phone = app.test_client()
    log_in(phone, "person")
    log_in(client, "person")

    done = client.post("/account/delete", data={"confirm": "radera"})

    assert done.status_code == 200
    assert "Dina uppgifter är raderade" in done.get_data(as_text=True)
    for device in (client, phone):
        assert device.get("/api/v1/me").status_code == 401
    assert caregiver.get(week).status_code == 403
    person = session.get(Person, world.person_id)
    remaining = session.scalar(
        select(func.count()).select_from(Booking).where(Booking.person_id == world.person_id)
    )
    audit_after = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    session.commit()
    assert (person.name, person.phone_e164, remaining) == ("Raderad person", None, 0)
    assert audit_after[: len(audit_before)] == audit_before
    with pytest.raises(DomainError, match="login.failed"):
        accounts.log_in(session, "person", PASSWORD, now=clock.now())


def test_a_person_registered_again_after_deleting_starts_empty(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")
    client.post("/account/delete", data={"confirm": "RADERA"})

    again = add_person(
        session,
        pnr_text=world.pnr,
        name="Alva Lindqvist",
        phone_text=None,
        timezone="Europe/Stockholm",
        now=now,
    )

    assert again.id == world.person_id and again.deleted_utc is None
    assert (
        session.scalar(
            select(func.count()).select_from(Booking).where(Booking.person_id == again.id)
        )
        == 0
    )
    session.commit()


def test_nothing_is_imported_for_a_person_whose_data_was_deleted(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")
    client.post("/account/delete", data={"confirm": "RADERA"})
    person = session.get(Person, world.person_id)

    with pytest.raises(DomainError, match="person.deleted"):
        do_import(
            session, person, vcalendar(event("new", ":20261210T090000Z", ":20261210T100000Z")), now
        )

    assert (
        session.scalar(
            select(func.count()).select_from(Booking).where(Booking.person_id == world.person_id)
        )
        == 0
    )
    session.commit()
