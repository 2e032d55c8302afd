"""Same-day suggestions: ranked free slots that save the person a journey, explained."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from calendar_app.domain.clashes import Preferences, Visit, WeeklyWindow
from calendar_app.domain.suggestions import suggest
from tests.support.world import log_in

SE = ZoneInfo("Europe/Stockholm")
PSYK = "Sigfridsvägen 9, 352 46 Växjö"
OPEN = (WeeklyWindow(frozenset(range(5)), time(8), time(16)),)
EARLY = datetime(2026, 11, 1, tzinfo=SE)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SE)


def local(s) -> str:
    return s.start.astimezone(SE).strftime("%d %H:%M")


def test_a_day_the_person_already_travels_ranks_first_best_at_the_same_address():
    existing = [Visit("a", at(2, 10), at(2, 11), "Samtal", PSYK)]
    found = suggest(
        60,
        date(2026, 11, 30),
        date(2026, 12, 4),
        OPEN,
        existing,
        Preferences(),
        PSYK,
        not_before=EARLY,
    )
    assert [local(s) for s in found[:2]] == ["02 08:00", "02 08:15"]
    assert found[0].reason.kind == "same_day_same_place"
    assert found[0].reason.other == "Samtal" and found[0].reason.other_start == at(2, 10)
    assert all(not (s.start < at(2, 11) and s.end > at(2, 10)) for s in found)


def test_another_town_on_the_same_day_still_ranks_above_a_free_day_with_its_reason():
    existing = [Visit("a", at(2, 10), at(2, 11), "Samtal", "Storgatan 1, 341 30 Ljungby")]
    found = suggest(
        30,
        date(2026, 11, 30),
        date(2026, 12, 4),
        OPEN,
        existing,
        Preferences(),
        PSYK,
        not_before=EARLY,
    )
    assert found[0].start.astimezone(SE).date() == date(2026, 12, 2)
    assert found[0].reason.kind == "same_day"
    assert not any(w.kind == "travel" for w in found[0].warnings)


def test_times_that_suit_the_person_win_and_hard_clashes_are_never_suggested():
    prefs = Preferences(
        suitable=(WeeklyWindow(frozenset(range(5)), time(14), time(16)),),
        busy=(("Arbete", WeeklyWindow(frozenset(range(5)), time(8), time(12))),),
    )
    found = suggest(60, date(2026, 12, 1), date(2026, 12, 1), OPEN, [], prefs, "", not_before=EARLY)
    assert [local(s) for s in found] == ["01 14:00", "01 14:15"]
    assert found[0].reason.kind == "suits"
    everything = suggest(
        60, date(2026, 12, 1), date(2026, 12, 1), OPEN, [], prefs, "", not_before=EARLY, limit=100
    )
    assert all(s.start.astimezone(SE).hour >= 12 for s in everything)


def test_suggestions_start_after_now_spread_over_days_and_respect_the_opening_hours():
    now = at(1, 15)
    found = suggest(
        60,
        date(2026, 12, 1),
        date(2026, 12, 7),
        OPEN,
        [],
        Preferences(),
        "",
        not_before=now,
        limit=10,
    )
    assert all(s.start >= now for s in found)
    days = [s.start.astimezone(SE).date() for s in found]
    assert max(days.count(d) for d in set(days)) <= 2
    assert all(s.start.astimezone(SE).weekday() < 5 for s in found)
    assert all(
        time(8) <= s.start.astimezone(SE).time() and s.end.astimezone(SE).time() <= time(16)
        for s in found
    )


def test_the_caregiver_is_suggested_a_same_day_time_and_books_it_with_one_click(client, world):
    log_in(client, "caregiver")
    path = f"/people/{world.person_id}/book"
    page = client.post(
        path,
        data={
            "action": "suggest",
            "date": "2026-12-01",
            "minutes": "45",
            "days": "5",
            "title": "Återbesök",
            "location": "Sigfridsvägen 9",
        },
    ).get_data(as_text=True)
    assert "Samma dag och samma adress som ditt besök på Samtal kl. 10.00 – en resa mindre" in page
    assert "<title>Boka besök – Personkalendern</title>" in page
    form = re.search(r'<form method="post" class="card">(.*?)</form>', page, re.S).group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    fields["action"] = "book"
    booked = client.post(path, data=fields)
    assert booked.status_code == 302
    assert fields["date"] == "2026-12-02"


def test_the_api_suggests_with_explanations_and_respects_the_units_opening_hours(client, world):
    log_in(client, "caregiver")
    hours = client.put(
        f"/api/v1/units/{world.unit_a}/opening-hours",
        json={"windows": [{"weekdays": [2], "start": "13:00", "end": "15:00"}]},
    )
    assert hours.status_code == 200
    found = client.post(
        f"/api/v1/people/{world.person_id}/visits/suggest",
        json={"minutes": 60, "from": "2026-11-30", "to": "2026-12-06"},
    ).json
    assert [f["start"] for f in found] == ["2026-12-02T13:00:00+01:00", "2026-12-02T13:15:00+01:00"]
    assert found[0]["explanation"].startswith("Samma dag som ditt besök på Samtal kl. 10.00")
    bad = client.put(
        f"/api/v1/units/{world.unit_a}/opening-hours",
        json={"windows": [{"weekdays": [9], "start": "13:00", "end": "15:00"}]},
    )
    assert bad.status_code == 400 and bad.json["error"]["code"] == "opening.format"
    other = client.put(f"/api/v1/units/{world.unit_b}/opening-hours", json={"windows": []})
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"minutes": 60, "from": "2026-12-01", "to": "2027-06-01"}, "range.too_long"),
        ({"minutes": 0, "from": "2026-12-01", "to": "2026-12-02"}, "visit.duration"),
        ({"minutes": 60, "from": "2026-12-05", "to": "2026-12-01"}, "range.invalid"),
        ({"minutes": 60, "from": "soon", "to": "2026-12-01"}, "visit.format"),
    ],
)
def test_bad_suggestion_requests_get_clear_codes(client, world, body, code):
    log_in(client, "caregiver")
    response = client.post(f"/api/v1/people/{world.person_id}/visits/suggest", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == code


def test_no_suggestion_lies_in_the_past(client, world, clock):
    now = clock.now()  # the service's own clock
    log_in(client, "caregiver")
    found = client.post(
        f"/api/v1/people/{world.person_id}/visits/suggest",
        json={
            "minutes": 30,
            "from": now.date().isoformat(),
            "to": (now.date() + timedelta(days=6)).isoformat(),  # holds weekdays
        },
    ).json
    assert found and all(
        datetime.fromisoformat(f["start"]) >= now.replace(microsecond=0) for f in found
    )


def test_a_phone_call_is_no_journey_to_share():
    existing = [Visit("tel", at(2, 9), at(2, 9, 30), "Telefonsamtal", "Telefon", travels=False)]
    found = suggest(
        60,
        date(2026, 12, 2),
        date(2026, 12, 2),
        OPEN,
        existing,
        Preferences(),
        PSYK,
        not_before=EARLY,
    )
    assert found[0].reason.kind == "free_day"


def test_in_the_demo_the_caregiver_is_warned_then_books_a_suggestion_that_explains_itself(
    client, session, clock
):
    from calendar_app.demo import LOGINS, load_demo
    from calendar_app.models import Person

    load_demo(session, now=clock.now())
    person = session.scalars(select(Person)).one()
    session.commit()
    today = clock.now().astimezone(SE).date()
    next_monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    client.post("/login", data={"username": "karin", "password": LOGINS["karin"][0]})
    path = f"/people/{person.id}/book"
    form = {
        "date": next_monday.isoformat(),
        "start": "09:00",
        "minutes": "45",
        "title": "Återbesök",
        "location": "Sigfridsvägen 9, 352 46 Växjö",
        "days": "5",
    }
    checked = client.post(path, data={**form, "action": "check"}).get_data(as_text=True)
    assert "Krockar med Telefonsamtal med läkare" in checked
    page = client.post(path, data={**form, "action": "suggest"}).get_data(as_text=True)
    first = re.search(r'<form method="post" class="card">(.*?)</form>', page, re.S).group(1)
    assert "Samma dag som ditt besök på en annan enhet kl." in first
    assert "en resa mindre" in first
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', first))
    assert client.post(path, data={**fields, "action": "book"}).status_code == 302
