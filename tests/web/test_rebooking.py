"""Native bookings can be moved and cancelled here; synced ones name whom to ask."""

from __future__ import annotations

from sqlalchemy import select

from calendar_app.models import Booking, BookingStatus
from tests.support.world import log_in


def test_a_native_booking_is_moved_with_its_sequence_bumped(client, world, session):
    log_in(client, "caregiver")
    response = client.put(
        f"/api/v1/bookings/{world.native_booking}",
        json={"date": "2026-12-02", "start": "13:00", "minutes": 30},
    )
    assert response.status_code == 200
    assert (response.json["sequence"], response.json["start"]) == (1, "2026-12-02T12:00:00+00:00")


def test_moving_onto_another_visit_is_a_clash_and_changes_nothing(client, world, session):
    log_in(client, "caregiver")
    before = session.get(Booking, world.native_booking).start_utc
    session.commit()
    response = client.put(
        f"/api/v1/bookings/{world.native_booking}",
        json={"date": "2026-12-02", "start": "10:15", "minutes": 30},
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "clash"
    session.expire_all()
    assert session.get(Booking, world.native_booking).start_utc == before


def test_a_cancelled_native_booking_is_kept_as_cancelled(client, world, session):
    log_in(client, "caregiver")
    response = client.delete(f"/api/v1/bookings/{world.native_booking}")
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    session.expire_all()
    assert session.get(Booking, world.native_booking).status == BookingStatus.CANCELLED
    session.commit()  # end the read before the app writes from its own connection
    again = client.put(
        f"/api/v1/bookings/{world.native_booking}",
        json={"date": "2026-12-02", "start": "13:00", "minutes": 30},
    )
    assert again.json["error"]["code"] == "booking.cancelled"


def test_a_synced_booking_cannot_be_changed_here(client, world, session):
    log_in(client, "caregiver")
    response = client.delete(f"/api/v1/bookings/{world.booking_a}")
    assert response.status_code == 409 and response.json["error"]["code"] == "booking.synced"
    session.expire_all()
    assert session.get(Booking, world.booking_a).status == BookingStatus.CONFIRMED


def test_another_unit_cannot_change_the_booking(client, world):
    log_in(client, "caregiver_unrelated")
    assert client.delete(f"/api/v1/bookings/{world.native_booking}").status_code == 403


def test_the_rebooked_visit_shows_at_its_new_time(client, world, session):
    log_in(client, "caregiver")
    client.put(
        f"/api/v1/bookings/{world.native_booking}",
        json={"date": "2026-12-03", "start": "09:00", "minutes": 45},
    )
    items = client.get(
        f"/api/v1/people/{world.person_id}/calendar?from=2026-12-03&to=2026-12-04"
    ).json["occurrences"]
    assert [(i["title"], i["start"]) for i in items] == [
        ("Uppföljning", "2026-12-03T09:00:00+01:00")
    ]
    assert session.scalars(select(Booking.uid).where(Booking.id == world.native_booking)).one()
