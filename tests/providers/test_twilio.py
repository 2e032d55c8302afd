"""Twilio through the real client: against the local Twilio API, Twilio's errors, and
signed delivery reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from calendar_app.models import Person, Reminder, ReminderState
from calendar_app.services import reminders
from calendar_app.services.dispatch import DispatchSettings, dispatch_due
from calendar_app.sms import SmsError
from calendar_app.twilio_sender import TwilioSender, TwilioSettings
from tests.support.oidc_broker import free_port
from tests.support.twilio_local import ACCOUNT, TOKEN, TwilioErrors, running_fake
from tests.support.world import build_world

PUBLIC = "https://kal.example.se"
DUE = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def sender(base: str, **kw) -> TwilioSender:
    return TwilioSender(
        TwilioSettings(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=kw.pop("from_number", "+46700000000"),
            api_base_url=base,
            status_callback=f"{PUBLIC}/webhooks/twilio/status",
            **kw,
        )
    )


def test_the_real_client_sends_a_message_twilio_accepts(prism):
    first = sender(prism).send(
        "+46701112233", "Påminnelse: ons 2 dec kl. 10.00", validity_seconds=3600
    )
    second = sender(prism).send("+46701112233", "Påminnelse", validity_seconds=50_000)
    assert first.sid and second.sid
    assert first.sid != second.sid


def test_a_messaging_service_can_send_instead_of_a_number(prism):
    assert (
        sender(prism, from_number="", messaging_service_sid="MG" + "1" * 32)
        .send("+46701112233", "Hej")
        .sid
    )


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (400, 21211, True),  # invalid 'To' number
        (400, 21610, True),  # the recipient replied STOP
        (400, 21614, True),  # not a mobile number
        (429, 20429, False),  # too many requests
        (500, None, False),
        (503, None, False),
    ],
)
def test_twilios_errors_are_told_apart_permanent_from_temporary(status, code, permanent):
    fake = TwilioErrors()
    fake.status, fake.code = status, code
    with running_fake(fake) as base, pytest.raises(SmsError) as refused:
        sender(base).send("+46701112233", "Hej", validity_seconds=600)
    assert refused.value.permanent is permanent
    assert refused.value.code == str(code or status)
    sent = fake.requests[0]
    assert (sent["To"], sent["From"], sent["ValidityPeriod"]) == (
        "+46701112233",
        "+46700000000",
        "600",
    )
    assert sent["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"


def test_an_unreachable_twilio_is_a_temporary_error():
    with pytest.raises(SmsError) as refused:
        sender(f"http://127.0.0.1:{free_port()}").send("+46701112233", "Hej")
    assert (refused.value.code, refused.value.permanent) == ("network", False)


@pytest.fixture
def app_config(prism):
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+46700000000",
        "TWILIO_API_BASE_URL": prism,
        "PUBLIC_BASE_URL": PUBLIC,
    }


def _sent_reminder(app, session, now) -> Reminder:
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = "+46701112233"
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    dispatch_due(
        app.extensions["session_factory"],
        sender=app.extensions["sms_sender"],
        settings=DispatchSettings(public_base_url=PUBLIC),
        clock=lambda: DUE,
    )
    session.expire_all()
    row = session.scalars(
        select(Reminder).where(
            Reminder.booking_id == world.booking_a, Reminder.helper_grant_id.is_(None)
        )
    ).one()
    session.commit()
    return row


def _report(client, form: dict[str, str], *, token: str = TOKEN):
    url = f"{PUBLIC}/webhooks/twilio/status"
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(
        "/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
    )


def test_the_app_sends_through_twilio_and_a_signed_report_marks_it_delivered(
    app, client, session, now
):
    row = _sent_reminder(app, session, now)
    assert row.state == ReminderState.SENT and row.message_sid

    answer = _report(client, {"MessageSid": row.message_sid, "MessageStatus": "delivered"})

    assert answer.status_code == 204
    session.expire_all()
    assert session.get(Reminder, row.id).state == ReminderState.DELIVERED
    session.commit()


def test_a_report_of_failure_is_recorded_with_twilios_code(app, client, session, now):
    row = _sent_reminder(app, session, now)
    _report(
        client,
        {"MessageSid": row.message_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"},
    )
    session.expire_all()
    failed = session.get(Reminder, row.id)
    session.commit()
    assert (failed.state, failed.reason) == (ReminderState.FAILED, "30003")


def test_a_forged_or_unsigned_report_is_refused_and_changes_nothing(app, client, session, now):
    row = _sent_reminder(app, session, now)
    form = {"MessageSid": row.message_sid, "MessageStatus": "failed"}

    forged = _report(client, form, token="not-our-token")
    unsigned = client.post("/webhooks/twilio/status", data=form)

    assert forged.status_code == unsigned.status_code == 403
    session.expire_all()
    assert session.get(Reminder, row.id).state == ReminderState.SENT
    session.commit()


def test_a_late_report_never_moves_a_delivered_reminder_back(app, client, session, now):
    row = _sent_reminder(app, session, now)
    _report(client, {"MessageSid": row.message_sid, "MessageStatus": "delivered"})
    _report(client, {"MessageSid": row.message_sid, "MessageStatus": "failed", "ErrorCode": "1"})
    session.expire_all()
    assert session.get(Reminder, row.id).state == ReminderState.DELIVERED
    session.commit()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TWILIO_ACCOUNT_SID": ACCOUNT}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM"),
        (
            {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "Vården"},
            "PUBLIC_BASE_URL",
        ),
    ],
)
def test_twilio_settings_that_cannot_work_stop_start_up(settings, message):
    from calendar_app import create_app
    from calendar_app.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        create_app({"DATABASE_URL": "sqlite://", **settings})
