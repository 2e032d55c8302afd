"""A real headless Chromium (Debian's) driven by Playwright: log in and see the week."""

from __future__ import annotations

from pathlib import Path

import pytest

from calendar_app.demo import LOGINS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser


def test_the_demo_person_logs_in_and_sees_the_week_with_the_overlap(live_server, page):
    page.goto(f"{live_server}/login")
    assert page.locator("html").get_attribute("lang") == "sv"
    page.get_by_label("Användarnamn").fill("alva")
    page.get_by_label("Lösenord").fill(LOGINS["alva"][0])
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url("**/week")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Vecka")
    clashes = page.locator(".visit.overlap")
    assert clashes.count() == 2
    assert "Krockar med ett annat besök" in clashes.first.inner_text()
    page.get_by_role("link", name="Återbesök, sjuksköterska").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Återbesök, sjuksköterska"
    assert page.get_by_text("Kontakta Vuxenpsykiatrin Växjö för att ändra den.").count() == 1


def test_the_demo_person_chooses_her_reminders_and_sends_a_test_message(live_server, page):
    page.goto(f"{live_server}/login")
    page.get_by_label("Användarnamn").fill("alva")
    page.get_by_label("Lösenord").fill(LOGINS["alva"][0])
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url("**/week")
    page.get_by_role("link", name="Påminnelser").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Påminnelser")

    page.get_by_label("Sorts påminnelse").select_option("days_before")
    page.get_by_label("Dagar före").fill("2")
    page.get_by_label("Klockan (TT.MM)").fill("18.00")
    page.get_by_role("button", name="Lägg till påminnelsen").click()
    page.get_by_label("Sorts påminnelse").select_option("same_day")
    page.get_by_label("Klockan (TT.MM)").fill("07.30")
    page.get_by_role("button", name="Lägg till påminnelsen").click()
    rules = page.locator("#rules-h + ul").inner_text()
    assert "2 dagar före kl. 18.00" in rules and "Samma dag kl. 07.30" in rules

    page.get_by_role("button", name="Skicka ett testmeddelande till min mobil").click()
    assert page.get_by_text("Ett testmeddelande är på väg till ditt mobilnummer.").count() == 1
    states = page.locator("table").last.inner_text()
    assert "Planerad" in states and "2 dagar före kl. 18.00" in states
