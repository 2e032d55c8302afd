"""Replies to reminders: STOPP/START, AVBOKA shown to the unit, messages to caregivers;
signature-verified, and nothing is cancelled by a text alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from calendar_app.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    InboundSms,
    Person,
    Reminder,
    ReminderState,
)
from calendar_app.services import reminders
from calendar_app.services.dispatch import DispatchSettings, dispatch_due
from tests.support.dispatch_fakes import FakeSender
from tests.support.world import actor, build_world, log_in

PUBLIC = "https://kal.example.se"
TOKEN = "test-auth-token"
PHONE = "+46701112233"
DUE = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # both visits of 2 December, one message


@pytest.fixture
def app_config():
    return {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+46700000000",
        "PUBLIC_BASE_URL": PUBLIC,
    }


def dispatch(app, at: datetime) -> None:
    dispatch_due(
        app.extensions["session_factory"],
        sender=FakeSender(),
        settings=DispatchSettings(public_base_url=PUBLIC),
        clock=lambda: at,
    )


@pytest.fixture
def world(app, session, now):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = PHONE
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    dispatch(app, DUE)
    return world


def reply(client, body: str, *, token: str = TOKEN, sender: str = PHONE):
    form = {"From": sender, "Body": body, "MessageSid": "SM" + "9" * 32}
    signature = RequestValidator(token).compute_signature(f"{PUBLIC}/webhooks/twilio/inbound", form)
    return client.post(
        "/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}
    )


def inbound(session) -> list[InboundSms]:
    session.expire_all()
    rows = list(session.scalars(select(InboundSms).order_by(InboundSms.id)))
    session.commit()
    return rows


def test_avboka_asks_each_unit_of_the_reminded_visits_and_cancels_nothing(
    app, client, session, world
):
    answer = reply(client, "Avboka tack")

    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert "Mottagningen får din begäran om avbokning" in answer.get_data(as_text=True)
    requests = inbound(session)
    assert {(r.kind.value, r.booking_id) for r in requests} == {
        ("cancel_request", world.booking_a),
        ("cancel_request", world.booking_b),
    }
    assert all(r.from_masked != PHONE and r.person_id == world.person_id for r in requests)
    statuses = set(session.scalars(select(Booking.status)))
    session.commit()
    assert statuses == {BookingStatus.CONFIRMED}  # the unit decides, not the text


def test_the_unit_sees_the_request_for_its_own_visit_and_the_read_is_audited(
    app, client, session, world
):
    reply(client, "AVBOKA")
    caregiver = app.test_client()
    log_in(caregiver, "caregiver")  # Vuxenpsykiatrin: booking A's unit

    page = caregiver.get("/unit/messages").get_data(as_text=True)

    assert page.count("Vill avboka") == 1
    assert f"/bookings/{world.booking_a}" in page and f"/bookings/{world.booking_b}" not in page
    audited = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.detail == "sms replies")
    )
    session.commit()
    assert audited == 1
    unrelated = app.test_client()
    log_in(unrelated, "caregiver_unrelated")
    assert "Vill avboka" not in unrelated.get("/unit/messages").get_data(as_text=True)


def test_any_other_text_is_shown_to_the_caregivers_as_a_message(app, client, session, world):
    reply(client, "Jag blir 10 minuter sen")
    (message,) = inbound(session)
    assert (message.kind.value, message.body) == ("message", "Jag blir 10 minuter sen")
    caregiver = app.test_client()
    log_in(caregiver, "caregiver")
    assert "Jag blir 10 minuter sen" in caregiver.get("/unit/messages").get_data(as_text=True)


def test_stopp_withdraws_what_would_be_sent_and_start_brings_reminders_back(
    app, client, session, world
):
    assert "inga fler påminnelser" in reply(client, "STOPP").get_data(as_text=True)
    reminders.add_rule(
        session, actor(session, "person"), world.person_id, kind="hours_before", hours=1, now=DUE
    )

    dispatch(app, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))  # one hour before booking A

    session.expire_all()
    stopped = session.scalars(
        select(Reminder).where(
            Reminder.booking_id == world.booking_a,
            Reminder.rule_label == "hours_before 1",
            Reminder.helper_grant_id.is_(None),
        )
    ).one()
    session.commit()
    assert (stopped.state, stopped.reason) == (ReminderState.WITHDRAWN, "opted_out")
    assert "igen" in reply(client, "Start").get_data(as_text=True)
    assert [r.kind.value for r in inbound(session)] == ["stop", "start"]


def test_a_forged_reply_is_refused_and_stores_nothing(client, session, world):
    assert reply(client, "STOPP", token="forged").status_code == 403
    assert inbound(session) == []


def test_a_reply_from_something_that_is_not_a_phone_number_stores_nothing(client, session, world):
    answer = reply(client, "STOPP", sender="Vården")
    assert answer.status_code == 200 and "<Message>" not in answer.get_data(as_text=True)
    assert inbound(session) == []
