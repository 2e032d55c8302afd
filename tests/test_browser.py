"""A real headless Chromium (Debian's) driven by Playwright: log in and see the week."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from calendar_app.db import now_utc
from calendar_app.demo import LOGINS, load_demo

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(app, session) -> Iterator[str]:
    """The app served on a free local port in a background thread, with the demo loaded."""
    load_demo(session, now=now_utc())
    session.commit()
    app.config["WTF_CSRF_ENABLED"] = True  # the browser goes through the real forms
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: scripts/ensure-test-env.sh installs it")
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        tab = context.new_page()
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield tab
        context.close()
        browser.close()
        assert errors == [], f"the browser reported errors (e.g. CSP violations): {errors}"


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
