"""The sources pages: the person adds and fetches her own calendar, reviews a held change;
an administrator adds a unit's source and decides a review; warnings reach the viewers
they should and no others."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from calendar_app.models import Booking, BookingStatus, ReviewState, Source, SourceReview
from calendar_app.services import sources, sync
from calendar_app.services.access import Actor
from tests.support.feeds import feed_server
from tests.support.helpers import event, vcalendar
from tests.support.world import log_in

TWO = vcalendar(
    event("a", ":20261202T090000Z", ":20261202T100000Z", summary="Tandläkaren"),
    event("b", ":20261203T090000Z", ":20261203T100000Z", summary="Gymmet"),
)


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SOURCE_ALLOWED_HOSTS": "127.0.0.1", "SYNC_TIMEOUT_SECONDS": 1}


@pytest.fixture(scope="module")
def feeds():
    with feed_server() as server:
        yield server


def sources_of(session, person_id: int) -> list[Source]:
    session.expire_all()
    rows = list(session.scalars(select(Source).where(Source.person_id == person_id)))
    for row in rows:
        row.provider  # noqa: B018  (loaded now, so that no later read opens a transaction)
    session.commit()
    return rows


def test_the_person_adds_fetches_and_removes_her_own_calendar(client, session, world, feeds):
    url = feeds.set("/own.ics", TWO)
    log_in(client, "person")
    page = client.get(f"/people/{world.person_id}/sources").get_data(as_text=True)
    assert "Lägg till min egen kalender" in page

    added = client.post(
        f"/people/{world.person_id}/sources",
        data={"url": url, "name": "Jobbet"},
        follow_redirects=True,
    )
    assert "Kalendern är tillagd" in added.get_data(as_text=True)
    [source] = sources_of(session, world.person_id)
    assert source.name == "Jobbet" and source.provider.name == sources.PERSONAL_UNIT

    fetched = client.post(
        f"/people/{world.person_id}/sources/{source.id}/sync", follow_redirects=True
    ).get_data(as_text=True)
    assert "Källan är hämtad." in fetched and "Fungerar" in fetched
    week = client.get(f"/people/{world.person_id}/week?start=2026-11-30").get_data(as_text=True)
    assert "Tandläkaren" in week

    removed = client.post(
        f"/people/{world.person_id}/sources/{source.id}/remove", follow_redirects=True
    )
    assert "Kalendern är borttagen." in removed.get_data(as_text=True)
    assert sources_of(session, world.person_id) == []
    left = session.scalars(select(Booking).where(Booking.uid.in_(["a", "b"]))).all()
    session.commit()
    assert left == [], "the removed calendar's events are gone with it"


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("http://169.254.169.254/latest/", "Adressen leder till ett internt eller lokalt nätverk"),
        ("ftp://example.se/a.ics", "Skriv kalenderns adress som https://"),
    ],
)
def test_a_refused_address_is_explained_in_swedish_and_nothing_is_added(
    client, session, world, url, text
):
    log_in(client, "person")
    answer = client.post(
        f"/people/{world.person_id}/sources", data={"url": url}, follow_redirects=True
    )
    assert text in answer.get_data(as_text=True)
    assert sources_of(session, world.person_id) == []


def _held(app, session, world, feeds, now) -> tuple[int, int]:
    """A unit source with two visits whose next read is empty: held for review."""
    url = feeds.set("/unit.ics", TWO)
    source = sources.add_source(
        session,
        Actor.operator(),
        person_id=world.person_id,
        adapter="ics_url",
        fields={"url": url},
        unit_name="Vuxenpsykiatrin Växjö",
        name="webbkalender",
        policy=sync.SyncPolicy.from_config(app.config),
        now=now,
    )
    factory = app.extensions["session_factory"]
    policy = sync.SyncPolicy.from_config(app.config)
    sync.sync_due(factory, policy, worker="t", clock=lambda: now)
    feeds.set("/unit.ics", vcalendar())
    [held] = sync.sync_due(factory, policy, worker="t", clock=lambda: now, source_id=source.id)
    assert held.review_id is not None
    return source.id, held.review_id


def test_the_person_reviews_a_held_change_and_applies_it(app, client, session, world, feeds, now):
    _, review_id = _held(app, session, world, feeds, now)
    log_in(client, "person")
    week = client.get(f"/people/{world.person_id}/week?start=2026-11-30").get_data(as_text=True)
    assert "Ändringar från Vuxenpsykiatrin Växjö väntar på granskning" in week
    page = client.get(f"/people/{world.person_id}/reviews/{review_id}").get_data(as_text=True)
    assert "skulle ställa in 2 av 2 kommande bokningar" in page
    assert "Tandläkaren" in page and "Gymmet" in page, "the person sees what would go"

    done = client.post(
        f"/people/{world.person_id}/reviews/{review_id}",
        data={"action": "apply"},
        follow_redirects=True,
    )
    assert "Ändringen är genomförd." in done.get_data(as_text=True)
    statuses = set(session.scalars(select(Booking.status).where(Booking.uid.in_(["a", "b"]))))
    session.commit()
    assert statuses == {BookingStatus.CANCELLED}
    again = client.post(
        f"/people/{world.person_id}/reviews/{review_id}",
        data={"action": "apply"},
        follow_redirects=True,
    )
    assert "Den här ändringen är redan avgjord." in again.get_data(as_text=True)


def test_a_booking_page_names_its_source_and_when_it_was_last_confirmed(
    app, client, session, world, feeds, now
):
    _held(app, session, world, feeds, now)
    booking_id = session.scalars(select(Booking.id).where(Booking.uid == "a")).one()
    session.commit()
    log_in(client, "person")
    page = client.get(f"/people/{world.person_id}/bookings/{booking_id}").get_data(as_text=True)
    assert "webbkalender · senast bekräftad måndag 23 november kl. 10.00" in page


def test_an_administrator_sees_counts_only_and_discards_audited(
    app, client, session, world, feeds, now
):
    source_id, review_id = _held(app, session, world, feeds, now)
    log_in(client, "admin")
    listing = client.get("/admin/sources").get_data(as_text=True)
    assert "skulle ställa in 2 av 2 kommande bokningar" in listing
    page = client.get(f"/people/{world.person_id}/reviews/{review_id}").get_data(as_text=True)
    assert "Tandläkaren" not in page, "titles are the person's, not the administrator's"
    client.post(f"/people/{world.person_id}/reviews/{review_id}", data={"action": "discard"})
    review = session.get(SourceReview, review_id)
    assert review.state == ReviewState.DISCARDED and review.decided_by == "Admin"
    statuses = set(session.scalars(select(Booking.status).where(Booking.uid.in_(["a", "b"]))))
    session.commit()
    assert statuses == {BookingStatus.CONFIRMED}, "discarding keeps the bookings"

    log_in(client, "caregiver")
    week = client.get(f"/people/{world.person_id}/week?start=2026-11-30").get_data(as_text=True)
    assert "Bokningar från Vuxenpsykiatrin Växjö kunde inte hämtas sedan" in week
    assert f"/reviews/{review_id}" not in week


def test_an_administrator_adds_a_units_source_by_personnummer_in_the_form(
    client, session, world, feeds
):
    url = feeds.set("/adm.ics", TWO)
    log_in(client, "admin")
    answer = client.post(
        "/admin/sources",
        data={
            "personnummer": world.pnr,
            "unit": "Vårdcentralen Teleborg",
            "url": url,
            "name": "tidbok",
            "poll_minutes": "15",
        },
    )
    assert answer.status_code == 302 and world.pnr not in answer.location
    [source] = sources_of(session, world.person_id)
    assert (source.provider.name, source.poll_minutes) == ("Vårdcentralen Teleborg", 15)
    refused = client.post(
        "/admin/sources",
        data={
            "personnummer": world.pnr,
            "unit": "Vårdcentralen Teleborg",
            "url": url,
            "name": "tidbok",
            "poll_minutes": "2",
        },
    )
    assert refused.status_code == 400
    assert "Hämta mellan var 5:e minut och en gång per dygn." in refused.get_data(as_text=True)
    paused = client.post(f"/admin/sources/{source.id}/pause")
    assert paused.status_code == 302
    assert sources_of(session, world.person_id)[0].enabled is False


def test_personal_source_warnings_reach_only_the_person(app, client, session, world, feeds, now):
    url = feeds.set("/own.ics", TWO)
    source = sources.add_source(
        session,
        Actor.operator(),
        person_id=world.person_id,
        adapter="ics_url",
        fields={"url": url},
        unit_name=None,
        name="Jobbet",
        policy=sync.SyncPolicy.from_config(app.config),
        now=now,
    )
    feeds.set("/own.ics", status=500)
    factory = app.extensions["session_factory"]
    sync.sync_due(factory, sync.SyncPolicy.from_config(app.config), worker="t", clock=lambda: now)
    assert sources_of(session, world.person_id)[0].id == source.id
    log_in(client, "person")
    own = client.get(f"/people/{world.person_id}/week").get_data(as_text=True)
    assert "Bokningar från Min kalender har inte kunnat hämtas än." in own
    for role in ("caregiver", "helper_full"):
        client.post("/logout")
        log_in(client, role)
        week = client.get(f"/people/{world.person_id}/week").get_data(as_text=True)
        assert "Min kalender" not in week
