"""/api/v1 reminders: the person sets rules and quiet hours and reads every state."""

from __future__ import annotations

import pytest

from calendar_app.models import Person
from calendar_app.services import reminders
from tests.support.world import build_world, log_in


@pytest.fixture
def world(session, now):
    world = build_world(session, now)
    session.get(Person, world.person_id).phone_e164 = "+46701112233"
    reminders.replan(session, world.person_id, now=now)
    session.commit()
    return world


def test_the_person_sets_rules_and_quiet_hours_and_reads_the_states(client, world):
    log_in(client, "person")
    base = f"/api/v1/people/{world.person_id}/reminders"

    first = client.get(base).get_json()
    added = client.post(f"{base}/rules", json={"kind": "days_before", "days": 2, "at": "18:00"})
    client.post(f"{base}/rules", json={"kind": "days_before", "days": 0, "at": "07:30"})
    quiet = client.put(
        f"{base}/settings", json={"to_person": True, "quiet_start": "21:00", "quiet_end": "08:00"}
    ).get_json()

    assert first["default_applies"] and first["rules"] == []
    assert added.status_code == 201
    assert [r["text"] for r in quiet["rules"]] == [
        "2 dagar före kl. 18.00",
        "Samma dag kl. 07.30",
    ]
    assert quiet["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    planned = [r for r in quiet["reminders"] if r["state"] == "planned" and r["to"] == "person"]
    # 07.30 is inside the quiet hours: sent at 08.00 (07:00 UTC) instead.
    assert {r["send_at"] for r in planned if r["rule"] == "days_before 0 07:30"} == {
        "2026-12-02T07:00:00+00:00"
    }
    rule_id = quiet["rules"][0]["id"]
    after = client.delete(f"{base}/rules/{rule_id}").get_json()
    assert [r["rule"] for r in after["rules"]] == ["days_before 0 07:30"]


@pytest.mark.parametrize(
    ("method", "suffix", "body", "code"),
    [
        ("post", "rules", {"kind": "days_before", "days": 2, "at": "25:00"}, "reminder.time"),
        ("post", "rules", {"kind": "days_before", "days": "2", "at": "18:00"}, "reminder.rule"),
        ("post", "rules", {"kind": "weekly"}, "reminder.rule"),
        ("put", "settings", {"quiet_start": "21:00"}, "reminder.quiet"),
        ("put", "settings", {"to_person": "yes"}, "reminder.settings"),
        ("delete", "rules/999", None, "reminder.not_found"),
    ],
)
def test_bad_input_gets_a_stable_code_and_changes_nothing(
    client, world, method, suffix, body, code
):
    log_in(client, "person")
    base = f"/api/v1/people/{world.person_id}/reminders"
    before = client.get(base).get_json()
    answer = getattr(client, method)(f"{base}/{suffix}", json=body)
    assert answer.get_json()["error"]["code"] == code
    assert answer.status_code in (400, 404)
    assert client.get(base).get_json() == before


def test_the_cancellation_notice_is_the_persons_choice(client, world):
    log_in(client, "person")
    base = f"/api/v1/people/{world.person_id}/reminders"
    assert client.get(base).get_json()["cancellation_notice"] is False
    on = client.put(f"{base}/settings", json={"cancellation_notice": True}).get_json()
    assert on["cancellation_notice"] is True and on["to_person"] is True
    kept = client.put(f"{base}/settings", json={"to_person": True}).get_json()
    assert kept["cancellation_notice"] is True  # left out: unchanged


def test_a_unit_can_be_turned_off_and_on(client, world):
    log_in(client, "person")
    base = f"/api/v1/people/{world.person_id}/reminders"
    off = client.put(f"{base}/units/{world.unit_a}", json={"reminders": False}).get_json()
    assert {u["unit_id"]: u["reminders"] for u in off["units"]}[world.unit_a] is False
    on = client.put(f"{base}/units/{world.unit_a}", json={"reminders": True}).get_json()
    assert {u["unit_id"]: u["reminders"] for u in on["units"]}[world.unit_a] is True
