"""Who sees what: one authorization function, redaction by level, and the audit log."""

from datetime import date

import pytest
from sqlalchemy import select

from calendar_app.models import (
    AuditEvent,
    CareRelationship,
    HelperBasis,
    HelperGrant,
    Provider,
    ProviderKind,
    Role,
    ViewLevel,
)
from calendar_app.services.access import AccessDenied, Actor
from calendar_app.services.accounts import add_user
from calendar_app.services.calendar import read_calendar
from tests.support.helpers import PNR_BO, add_person, do_import, event, vcalendar

WEEK = date(2026, 12, 1), date(2026, 12, 8)


@pytest.fixture
def world(session, now):
    """Alva with a psychiatry visit and a home-support visit that overlap."""
    alva = add_person(session, now)
    do_import(
        session,
        alva,
        vcalendar(
            event(
                "psyk",
                ":20261202T090000Z",
                ":20261202T100000Z",
                summary="Samtal",
                LOCATION="Sigfridsvägen 9",
            )
        ),
        now,
    )
    do_import(
        session,
        alva,
        vcalendar(
            event(
                "hem",
                ":20261202T093000Z",
                ":20261202T103000Z",
                summary="Boendestöd",
                LOCATION="Hemma",
            )
        ),
        now,
        provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
    )
    psyk = session.scalars(select(Provider).where(Provider.name == "Vuxenpsykiatrin Växjö")).one()
    return alva, psyk


def actor_for(session, role, **kw):
    user = add_user(
        session,
        username=f"u{role.value}{kw.get('provider_id', '')}",
        display_name="Test",
        password="long-enough-pw",
        role=role,
        **kw,
    )
    session.commit()
    return Actor(
        user_id=user.id,
        role=role,
        label=f"Test ({role.value})",
        person_id=kw.get("person_id"),
        provider_id=kw.get("provider_id"),
    )


def audit_rows(session, person_id):
    return session.scalars(select(AuditEvent).where(AuditEvent.person_id == person_id)).all()


def test_the_person_sees_everything_in_full_and_is_not_audited(session, now, world):
    alva, _ = world
    actor = actor_for(session, Role.PERSON, person_id=alva.id)
    view = read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)
    assert {o.title for o in view.occurrences} == {"Samtal", "Boendestöd"}
    assert all(o.overlaps for o in view.occurrences)
    assert audit_rows(session, alva.id) == []


def test_a_person_may_not_open_someone_elses_calendar(session, now, world):
    alva, _ = world
    bo = add_person(session, now, pnr=PNR_BO, name="Bo")
    actor = actor_for(session, Role.PERSON, person_id=bo.id)
    with pytest.raises(AccessDenied):
        read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)


def test_a_caregiver_sees_own_unit_in_full_and_other_units_only_as_busy(session, now, world):
    alva, psyk = world
    actor = actor_for(session, Role.CAREGIVER, provider_id=psyk.id)
    view = read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)
    by_title = {o.title: o for o in view.occurrences}
    assert set(by_title) == {"Samtal", "Upptagen"}
    busy = by_title["Upptagen"]
    assert (busy.location, busy.provider, busy.source) == ("", "", "")
    assert "hem" not in busy.uid
    assert by_title["Samtal"].overlaps == (busy.uid,), "the clash is shown, without detail"
    (row,) = audit_rows(session, alva.id)
    assert row.action == "calendar.read" and row.actor_user_id == actor.user_id


def test_a_caregiver_without_a_care_relationship_is_refused(session, now, world):
    alva, _ = world
    other = Provider(name="Vårdcentralen Teleborg", kind=ProviderKind.REGION)
    session.add(other)
    session.commit()
    actor = actor_for(session, Role.CAREGIVER, provider_id=other.id)
    with pytest.raises(AccessDenied):
        read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)
    session.rollback()
    assert audit_rows(session, alva.id) == []


def test_an_ended_care_relationship_ends_access(session, now, world):
    alva, psyk = world
    actor = actor_for(session, Role.CAREGIVER, provider_id=psyk.id)
    for rel in session.scalars(
        select(CareRelationship).where(CareRelationship.provider_id == psyk.id)
    ):
        rel.ended_utc = now
    session.commit()
    with pytest.raises(AccessDenied):
        read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)


def test_a_helper_sees_at_the_granted_level_until_the_grant_is_withdrawn(session, now, world):
    alva, _ = world
    actor = actor_for(session, Role.HELPER)
    grant = HelperGrant(
        person_id=alva.id,
        helper_user_id=actor.user_id,
        view_level=ViewLevel.TIME_PLACE,
        basis=HelperBasis.RELATIVE,
        granted_utc=now,
    )
    session.add(grant)
    session.commit()
    view = read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)
    assert {(o.title, o.location) for o in view.occurrences} == {
        ("Upptagen", "Sigfridsvägen 9"),
        ("Upptagen", "Hemma"),
    }
    assert len(audit_rows(session, alva.id)) == 1
    grant.withdrawn_utc = now
    session.commit()
    with pytest.raises(AccessDenied):
        read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)


def test_an_administrator_cannot_read_calendars(session, now, world):
    alva, _ = world
    actor = actor_for(session, Role.ADMIN)
    with pytest.raises(AccessDenied):
        read_calendar(session, actor, alva.id, *WEEK, now=now, max_days=400)


def test_a_command_line_read_is_audited_as_the_operator(session, now, world):
    alva, _ = world
    read_calendar(session, Actor.operator(), alva.id, *WEEK, now=now, max_days=400)
    (row,) = audit_rows(session, alva.id)
    assert row.actor_user_id is None and "operator" in row.actor_label
