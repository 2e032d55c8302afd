"""The "Påminnelser" page: the person sets rules and sees every reminder's state."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from calendar_app.models import Person, Reminder, ReminderState
from calendar_app.services import reminders
from tests.support.world import build_world, log_in


@pytest.fixture
def world(session, now):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = "+46701112233"
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    return world


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_the_person_sets_two_days_before_at_six_and_the_same_day_at_half_past_seven(
    client, session, world
):
    log_in(client, "person")
    page = f"/people/{world.person_id}/reminders"
    assert "Dagen före" not in text(client.get(page))  # the default is shown as a rule
    assert "1 dag före kl. 18.00 (tills du väljer egna)" in text(client.get(page))

    client.post(f"{page}/rules", data={"kind": "days_before", "days": "2", "at": "18.00"})
    client.post(f"{page}/rules", data={"kind": "same_day", "at": "7.30"})
    shown = text(client.get(page))

    assert "2 dagar före kl. 18.00" in shown and "Samma dag kl. 07.30" in shown
    assert "tills du väljer egna" not in shown
    states = {r.rule_label: r.state for r in session.scalars(select(Reminder))}
    session.commit()
    assert states["days_before 2 18:00"] == ReminderState.PLANNED
    assert states["days_before 0 07:30"] == ReminderState.PLANNED
    assert "Planerad" in shown and "Återkallad: påminnelserna eller mottagarna ändrades" in shown


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"kind": "days_before", "days": "2", "at": "25.00"}, "Skriv tiden som TT.MM"),
        ({"kind": "days_before", "days": "30", "at": "18.00"}, "Påminnelsen går inte att använda"),
        ({"kind": "hours_before", "hours": "x"}, "Påminnelsen går inte att använda"),
    ],
)
def test_a_rule_that_cannot_work_gets_a_swedish_message_and_changes_nothing(
    client, session, world, form, message
):
    log_in(client, "person")
    page = f"/people/{world.person_id}/reminders"
    response = client.post(f"{page}/rules", data=form, follow_redirects=True)
    assert message in text(response)
    assert "tills du väljer egna" in text(response)


def test_quiet_hours_and_a_unit_turned_off_are_saved(client, session, world):
    log_in(client, "person")
    page = f"/people/{world.person_id}/reminders"
    client.post(f"{page}/settings", data={"to_person": "on", "quiet_start": "21", "quiet_end": "8"})
    client.post(f"{page}/units/{world.unit_b}", data={"on": "0"})
    shown = text(client.get(page))
    assert 'value="21.00"' in shown and 'value="08.00"' in shown
    assert "Boendestöd Växjö kommun: inga påminnelser" in shown
    only_start = client.post(
        f"{page}/settings", data={"quiet_start": "21.00"}, follow_redirects=True
    )
    assert "Tysta timmar behöver både en början och ett slut" in text(only_start)


def test_a_person_without_a_mobile_number_is_told_why_nothing_is_sent(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")
    shown = text(client.get(f"/people/{world.person_id}/reminders"))
    assert "Det finns inget mobilnummer till dig här" in shown
    assert "Återkallad: det finns inget mobilnummer att skicka till" in shown


def test_a_test_message_goes_through_the_configured_sender(client, session, world, caplog):
    log_in(client, "person")
    with caplog.at_level("INFO"):
        done = client.post(f"/people/{world.person_id}/reminders/test", follow_redirects=True)
    assert "Ett testmeddelande är på väg till ditt mobilnummer" in text(done)
    assert "+46*******33" in caplog.text  # the console sender, with the number masked


def test_the_short_link_in_a_reminder_leads_to_the_booking_page(client, session, world):
    log_in(client, "person")
    hop = client.get(f"/b/{world.booking_a}")
    assert hop.status_code == 302
    assert hop.location == f"/people/{world.person_id}/bookings/{world.booking_a}"
    assert client.get("/b/999999").status_code == 404


def test_every_reminder_state_and_reason_reads_in_swedish(app, session, world):
    from calendar_app.web.messages import reminder_state_text

    with app.test_request_context():
        assert reminder_state_text("failed", "21610") == (
            "Misslyckades: numret har stoppat sms från oss (STOPP)"
        )
        assert reminder_state_text("planned", "retry:429") == (
            "Planerad: ett nytt försök efter ett tillfälligt fel"
        )
        assert reminder_state_text("sent", "with:12") == (
            "Skickad: i samma sms som ett annat besök samma dag"
        )
        assert reminder_state_text("failed", "30003") == "Misslyckades: fel 30003"
        assert reminder_state_text("delivered", "") == "Levererad"
