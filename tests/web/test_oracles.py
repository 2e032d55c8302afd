"""No oracles: what a caregiver gets does not depend on the details of a visit they may not
see. Each test builds the same world twice, differing only in a hidden visit's detail, and
asks for the same thing: the answers must be the same, byte for byte (but for CSRF tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from calendar_app import create_app
from calendar_app.clock import FrozenClock
from calendar_app.models import Booking, Person, ProviderKind
from tests.conftest import NOW, isolated_url
from tests.support.helpers import do_import, event, vcalendar
from tests.support.world import World, build_world, log_in

WEDNESDAY = "2026-11-25"


def _same_answer(
    database_url, tmp_path, build: Callable[[object, World, str], None], ask: Callable
) -> list[str]:
    """What ``ask`` answers the caregiver in two worlds, each in a database of its own,
    differing only by ``build``'s variant ("a" or "b"); CSRF tokens taken out."""
    answers = []
    for variant in ("a", "b"):
        folder = tmp_path / variant
        folder.mkdir()
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": isolated_url(database_url, folder).render_as_string(
                    hide_password=False
                ),
                "SECRET_KEY": "test-secret",
                "WTF_CSRF_ENABLED": False,
            },
            clock=FrozenClock(NOW),
        )
        app.instance_path = str(folder)
        try:
            with app.extensions["session_factory"]() as session:
                world = build_world(session, NOW)
                build(session, world, variant)
                session.commit()
            client = app.test_client()
            log_in(client, "caregiver")
            text = ask(client, world)
        finally:
            app.extensions["feed_renderer"].stop()
            app.extensions["engine"].dispose()
        answers.append(re.sub(r'name="csrf_token" value="[^"]*"', "", text))
    return answers


def _hidden_visit(session, world: World, title: str, place: str) -> None:
    """Boendestöd (a unit the caregiver sees as busy time) books Wednesday 10-11."""
    alva = session.get(Person, world.person_id)
    do_import(
        session,
        alva,
        vcalendar(event("dold", ":20261125T090000Z", ":20261125T100000Z", title, LOCATION=place)),
        NOW,
        provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
        source="dolt",
    )


def _own_visit(session, world: World, title: str) -> None:
    alva = session.get(Person, world.person_id)
    do_import(
        session,
        alva,
        vcalendar(event("egen", ":20261125T090000Z", ":20261125T100000Z", title)),
        NOW,
        source="egen",
    )


def test_a_duplicate_hint_never_tells_a_caregiver_a_hidden_visits_title(database_url, tmp_path):
    def build(session, world, variant):
        _own_visit(session, world, "Samtal")
        _hidden_visit(session, world, "Samtal" if variant == "a" else "Något annat", "Hemma")

    def ask(client, world):
        page = client.get(f"/people/{world.person_id}/week?start={WEDNESDAY}")
        api = client.get(f"/api/v1/people/{world.person_id}/calendar?from=2026-11-23&to=2026-11-30")
        return page.get_data(as_text=True) + api.get_data(as_text=True)

    first, second = _same_answer(database_url, tmp_path, build, ask)
    assert first == second
    assert "Samtal" in first  # the caregiver's own visit is there, in full


def test_a_travel_warning_never_depends_on_a_hidden_visits_place(database_url, tmp_path):
    def build(session, world, variant):
        place = "Storgatan 1, 352 30 Växjö" if variant == "a" else "Kungsgatan 2, 411 19 Göteborg"
        _hidden_visit(session, world, "Boendestöd", place)

    def ask(client, world):
        answers = []
        for start in ("11:05", "11:30", "12:30"):  # just after the hidden visit, and later
            answers.append(
                client.post(
                    f"/api/v1/people/{world.person_id}/visits/check",
                    json={
                        "date": WEDNESDAY,
                        "start": start,
                        "minutes": 30,
                        "location": "Storgatan 1, 352 30 Växjö",
                    },
                ).get_data(as_text=True)
            )
        suggestions = client.post(
            f"/api/v1/people/{world.person_id}/visits/suggest",
            json={
                "minutes": 30,
                "from": WEDNESDAY,
                "to": WEDNESDAY,
                "location": "Storgatan 1, 352 30 Växjö",
            },
        )
        return "\n".join([*answers, suggestions.get_data(as_text=True)])

    first, second = _same_answer(database_url, tmp_path, build, ask)
    assert first == second
    assert '"warnings"' in first


def test_a_source_warning_never_names_a_unit_the_caregiver_sees_as_busy_time(
    database_url, tmp_path
):
    from datetime import timedelta

    from calendar_app.models import Provider, Source, SourceState

    def build(session, world, variant):
        _hidden_visit(session, world, "Boendestöd", "Hemma")
        unit = session.get(Provider, world.unit_b)
        if variant == "b":
            unit.name = "Beroendemottagningen"  # the name alone would say what care it is
        session.add(
            Source(
                provider_id=unit.id,
                person_id=world.person_id,
                name="planering",
                adapter="ics_url",
                settings="{}",
                state=SourceState.FAILING,
                failures=3,
                last_success_utc=NOW - timedelta(hours=3),
                created_utc=NOW - timedelta(days=3),
            )
        )

    def ask(client, world):
        return client.get(f"/people/{world.person_id}/week?start={WEDNESDAY}").get_data(
            as_text=True
        )

    first, second = _same_answer(database_url, tmp_path, build, ask)
    assert first == second
    assert "kunde inte hämtas" in first  # the caregiver is told the calendar may be behind


def test_the_caregivers_own_unit_is_never_joined_with_another_units_copy(client, session, now):
    """A booking another unit sends with the same UID and time as the caregiver's own does
    not rename, hide or stand in for it, in the caregiver's week or day list."""
    world = build_world(session, now)
    _own_visit(session, world, "Återbesök")
    alva = session.get(Person, world.person_id)
    do_import(
        session,
        alva,
        vcalendar(event("egen", ":20261125T090000Z", ":20261125T100000Z", "Falskt namn")),
        now,
        provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
    )
    session.commit()
    log_in(client, "caregiver")
    week = client.get(f"/people/{world.person_id}/week?start={WEDNESDAY}").get_data(as_text=True)
    day = client.get(f"/unit/day?day={WEDNESDAY}").get_data(as_text=True)
    assert "Återbesök" in week and "Falskt namn" not in week
    assert "Återbesök" in day and "Falskt namn" not in day
    assert len(session.scalars(select(Booking).where(Booking.uid == "egen")).all()) == 2
