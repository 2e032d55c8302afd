"""Protected identity (skyddade personuppgifter) can be set and ended by an administrator,
with the decision's reference, audited; the person and her caregivers see the marker; and it
takes effect at once on every surface: the caregiver's pages, the person's feeds, SMS."""

from __future__ import annotations

from sqlalchemy import select

from calendar_app.models import AuditEvent, Person
from calendar_app.services import feeds
from calendar_app.services.access import Actor
from tests.support.world import log_in

WEEK = "?start=2026-11-30"  # the world's visits are on Wednesday 2 December


def _record(client, world, action: str, reference: str = "SKV 2026-4711"):
    return client.post(
        "/admin/protected-identity",
        data={"personnummer": world.pnr, "action": action, "reference": reference},
    )


def test_an_administrator_records_protection_with_its_reference_and_it_is_audited(
    client, session, world
):
    log_in(client, "admin")
    page = client.get("/admin/protected-identity")
    assert page.status_code == 200 and 'name="reference"' in page.get_data(as_text=True)

    answer = _record(client, world, "on")

    assert answer.status_code == 200 and "Alva" in answer.get_data(as_text=True)
    person = session.get(Person, world.person_id)
    session.refresh(person)
    assert person.protected_identity is True
    assert person.protected_identity_reference == "SKV 2026-4711"
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "person.protected_identity_on")
    ).one()
    assert (audit.person_id, audit.detail, audit.actor_role) == (
        world.person_id,
        "SKV 2026-4711",
        "admin",
    )
    session.commit()
    assert _record(client, world, "off", "SKV 2027-0001").status_code == 200
    session.refresh(person)
    assert person.protected_identity is False


def test_protection_without_a_reference_or_by_anyone_else_is_refused(client, session, world):
    log_in(client, "admin")
    assert _record(client, world, "on", reference="  ").status_code == 400
    client.post("/logout")
    log_in(client, "caregiver")
    assert _record(client, world, "on").status_code == 403
    person = session.get(Person, world.person_id)
    session.refresh(person)
    assert person.protected_identity is False


def test_protection_takes_effect_at_once_on_the_caregivers_pages_and_the_feeds(
    app, client, session, world, now
):
    made = feeds.create_feed(session, Actor.operator(), world.person_id, level="full", now=now)
    session.commit()
    before = client.get(feeds.feed_path(made.token)).get_data(as_text=True)
    assert "Hemma" in before  # the rendered feed holds the other unit's place

    admin = app.test_client()
    log_in(admin, "admin")
    assert _record(admin, world, "on").status_code == 200

    after = client.get(feeds.feed_path(made.token)).get_data(as_text=True)
    assert "Hemma" not in after and "Sigfridsvägen" not in after
    log_in(client, "caregiver")
    week = client.get(f"/people/{world.person_id}/week{WEEK}").get_data(as_text=True)
    assert "Hemma" not in week  # the other unit's place
    assert "Skyddade personuppgifter" in week  # the marker
    people = client.get("/").get_data(as_text=True)
    assert "Skyddade personuppgifter" in people


def test_the_person_sees_that_her_data_is_protected(client, session, world):
    person = session.get(Person, world.person_id)
    person.protected_identity = True
    session.commit()
    log_in(client, "person")
    week = client.get(f"/people/{world.person_id}/week{WEEK}").get_data(as_text=True)
    assert "Dina personuppgifter är skyddade" in week
    assert "Hemma" in week  # she sees her own visits' places


def test_the_command_line_records_protection_and_its_end_never_printing_the_personnummer(
    app, session, world
):
    from calendar_app.cli import main

    runner = app.test_cli_runner()
    on = runner.invoke(
        main, ["person", "protect", "--personnummer", world.pnr, "--reference", "SKV 1"]
    )
    assert on.exit_code == 0, on.output
    assert world.pnr not in on.output and world.pnr[2:] not in on.output
    person = session.get(Person, world.person_id)
    session.refresh(person)
    assert person.protected_identity and person.protected_identity_reference == "SKV 1"
    session.commit()
    off = runner.invoke(
        main, ["person", "protect", "--personnummer", world.pnr, "--reference", "SKV 2", "--end"]
    )
    assert off.exit_code == 0, off.output
    session.refresh(person)
    assert not person.protected_identity
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.person_id == world.person_id)
    ).all()
    assert actions == ["person.protected_identity_on", "person.protected_identity_off"]
    session.commit()
    missing = runner.invoke(main, ["person", "protect", "--personnummer", world.pnr,
                                   "--reference", " "])  # fmt: skip
    assert missing.exit_code == 1 and "protection.reference_missing" in missing.output
