"""The person's preferences: stored in one transaction, used by the clash check."""

from __future__ import annotations

import pytest

from tests.support.world import log_in


def test_the_person_sets_her_times_and_the_caregiver_is_warned(app, client, world):
    log_in(client, "person")
    response = client.put(
        f"/api/v1/people/{world.person_id}/preferences",
        json={
            "max_visits_per_day": 2,
            "travel_buffer_minutes": 45,
            "home_address": "Storgatan 3, 352 30 Växjö",
            "windows": [
                {"kind": "suitable", "weekdays": [0, 1, 2, 3, 4], "start": "18:00", "end": "21:00"},
                {
                    "kind": "busy",
                    "label": "Skola",
                    "weekdays": [2],
                    "start": "13:00",
                    "end": "15:00",
                },
            ],
        },
    )
    assert response.status_code == 200
    assert response.json["max_visits_per_day"] == 2
    assert [w["kind"] for w in response.json["windows"]] == ["busy", "suitable"]
    caregiver = app.test_client()
    log_in(caregiver, "caregiver")
    warnings = caregiver.post(
        f"/api/v1/people/{world.person_id}/visits/check",
        json={"date": "2026-12-02", "start": "14:00", "minutes": 30},
    ).json["warnings"]
    assert sorted((w["kind"], w["hard"], w["other"]) for w in warnings) == [
        ("busy_period", True, "Skola"),
        ("max_per_day", False, "3"),
        ("outside_suitable", False, ""),
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"max_visits_per_day": 0}, "preferences.max"),
        ({"travel_buffer_minutes": 999}, "preferences.travel"),
        (
            {"windows": [{"kind": "busy", "weekdays": [], "start": "08:00", "end": "09:00"}]},
            "preferences.weekdays",
        ),
        (
            {"windows": [{"kind": "busy", "weekdays": [1], "start": "10:00", "end": "09:00"}]},
            "preferences.window",
        ),
        (
            {"windows": [{"kind": "busy", "weekdays": [1], "start": "late", "end": "09:00"}]},
            "preferences.format",
        ),
        # Found by the fuzzer: PostgreSQL cannot store U+0000, which made this a 500.
        ({"home_address": "Storgatan 1\u0000"}, "request.text"),
        ({"windows": [{"kind": "busy", "label": "\u0007", "weekdays": [1]}]}, "request.text"),
    ],
)
def test_bad_preferences_change_nothing(client, world, body, code):
    log_in(client, "person")
    before = client.get(f"/api/v1/people/{world.person_id}/preferences").json
    response = client.put(f"/api/v1/people/{world.person_id}/preferences", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == code
    assert client.get(f"/api/v1/people/{world.person_id}/preferences").json == before


def test_the_preferences_page_adds_and_removes_a_busy_period_in_swedish(client, world):
    log_in(client, "person")
    page = client.get(f"/people/{world.person_id}/preferences").get_data(as_text=True)
    assert "Mina tider" in page and "söndag" in page and "Träning" in page
    response = client.post(
        f"/people/{world.person_id}/preferences/windows",
        data={
            "kind": "busy",
            "label": "Arbete",
            "weekday": ["0", "1", "2"],
            "start": "08:00",
            "end": "16:00",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Arbete" in page and "måndag, tisdag, onsdag" in page
    bad = client.post(
        f"/people/{world.person_id}/preferences/windows",
        data={"kind": "busy", "weekday": ["0"], "start": "16:00", "end": "08:00"},
        follow_redirects=True,
    )
    assert "En period måste sluta efter att den börjar" in bad.get_data(as_text=True)
    client.post(f"/people/{world.person_id}/preferences/windows/{world.window_id}/delete")
    page = client.get(f"/people/{world.person_id}/preferences").get_data(as_text=True)
    assert "Träning" not in page


def test_the_daily_maximum_and_travel_time_are_saved_from_the_form(client, world):
    log_in(client, "person")
    client.post(
        f"/people/{world.person_id}/preferences",
        data={"max_visits": "2", "travel": "30", "home_address": "Storgatan 3, 352 30 Växjö"},
    )
    saved = client.get(f"/api/v1/people/{world.person_id}/preferences").json
    assert (saved["max_visits_per_day"], saved["travel_buffer_minutes"], saved["home_address"]) == (
        2,
        30,
        "Storgatan 3, 352 30 Växjö",
    )
    bad = client.post(
        f"/people/{world.person_id}/preferences", data={"max_visits": "many"}, follow_redirects=True
    )
    assert "Skriv heltal." in bad.get_data(as_text=True)


def test_a_form_or_address_with_a_nul_character_is_refused_and_changes_nothing(
    client, world, session
):
    log_in(client, "person")
    path = f"/people/{world.person_id}/preferences/windows"
    form = {"kind": "busy", "label": "Simträ\x00ning", "weekday": ["0"], "start": "08:00"}
    refused = client.post(path, data={**form, "end": "16:00"})
    assert refused.status_code == 400
    assert "Något var fel i förfrågan" in refused.get_data(as_text=True)
    page = client.get(f"/people/{world.person_id}/preferences").get_data(as_text=True)
    assert "Simträ" not in page
    assert client.get(f"/people/{world.person_id}/week?start=2026-11-23%00").status_code == 400
