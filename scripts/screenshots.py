"""Write the pages a newcomer sees, at phone and desktop width, to docs/screenshots/.

    python scripts/screenshots.py        (or: make screenshots)

A throw-away SQLite database with the demo, the app on a free local port, and Debian's
headless Chromium driven by Playwright; nothing of the real instance is touched.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from calendar_app import create_app
from calendar_app.demo import LOGINS, load_demo
from calendar_app.migrations import upgrade
from calendar_app.models import Booking, Person

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"phone": (360, 780), "desktop": (1280, 900)}
# (file name, who, path): {p} the demo person, {b} her visit with the nurse.
PAGES = [
    ("01-login", None, "/login"),
    ("02-week", "alva", "/people/{p}/week"),
    ("03-today", "alva", "/people/{p}/today"),
    ("04-month", "alva", "/people/{p}/month"),
    ("05-visit", "alva", "/people/{p}/bookings/{b}"),
    ("06-overview", "alva", "/people/{p}/overview"),
    ("07-reminders", "alva", "/people/{p}/reminders"),
    ("08-subscribe", "alva", "/people/{p}/feeds"),
    ("09-settings", "alva", "/people/{p}/settings"),
    ("13-agenda", "alva", "/people/{p}/agenda"),
    ("14-fewer-days", "alva", "/people/{p}/review"),
    ("15-what-suits-me", "alva", "/people/{p}/preferences"),
    ("16-sources", "alva", "/people/{p}/sources"),
    ("17-who-has-seen", "alva", "/people/{p}/audit"),
    ("18-account", "alva", "/account"),
    ("10-caregiver-week", "karin", "/people/{p}/week"),
    ("11-caregiver-book", "karin", "/people/{p}/book"),
    ("12-unit-day", "karin", "/unit/day"),
    ("19-caregiver-start", "karin", "/"),
    ("20-helper-week", "maria", "/people/{p}/week"),
    ("21-admin", "admin", "/"),
    ("22-admin-health", "admin", "/admin/health"),
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"DATABASE_URL": f"sqlite:///{folder}/shots.sqlite3", "SECRET_KEY": "screenshots"}
        )
        app.instance_path = folder
        upgrade(app.extensions["engine"])
        with app.extensions["session_factory"]() as session:
            load_demo(session, now=app.extensions["clock"].now())
            person = session.scalars(select(Person)).one()
            booking = session.scalars(select(Booking).where(Booking.uid.startswith("psyk-1"))).one()
            ids = {"p": person.id, "b": booking.id}
            session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                for label, (width, height) in WIDTHS.items():
                    context = browser.new_context(viewport={"width": width, "height": height})
                    page = context.new_page()
                    who = "?"
                    for name, username, template in PAGES:
                        if username != who:
                            context.clear_cookies()
                            if username:
                                page.goto(f"{base}/login")
                                page.get_by_label("Användarnamn").fill(username)
                                page.get_by_label("Lösenord").fill(LOGINS[username][0])
                                with page.expect_navigation():
                                    page.get_by_role("button", name="Logga in").click()
                            who = username
                        page.goto(base + template.format(**ids))
                        target = OUT / f"{name}-{label}.png"
                        page.screenshot(path=str(target), full_page=True)
                        print(target.relative_to(OUT.parent.parent))
                    context.close()
                browser.close()
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
