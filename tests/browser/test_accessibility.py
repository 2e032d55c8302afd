"""WCAG 2.1 AA in a real browser: axe-core on every page people use, at phone and desktop
width; no horizontal scrolling at 200 % zoom; a keyboard-only run through the main tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from calendar_app.demo import LOGINS
from calendar_app.models import Booking, Person
from tests.support.helpers import forget_who_was_logged_in

pytestmark = pytest.mark.browser

# (who, path template) for every page in the browser tests; {p} is the demo person's id,
# {b} one of her bookings.
PAGES = [
    (None, "/login"),
    ("alva", "/people/{p}/today"),
    ("alva", "/people/{p}/week"),
    ("alva", "/people/{p}/month"),
    ("alva", "/people/{p}/agenda"),
    ("alva", "/people/{p}/bookings/{b}"),
    ("alva", "/people/{p}/overview"),
    ("alva", "/people/{p}/review"),
    ("alva", "/people/{p}/reminders"),
    ("alva", "/people/{p}/preferences"),
    ("alva", "/people/{p}/feeds"),
    ("alva", "/people/{p}/sources"),
    ("alva", "/people/{p}/settings"),
    ("alva", "/people/{p}/audit"),
    ("alva", "/account"),
    ("karin", "/"),
    ("karin", "/people/{p}/week"),
    ("karin", "/people/{p}/book"),
    ("karin", "/unit/day"),
    ("maria", "/people/{p}/week"),
    ("admin", "/"),
    ("admin", "/admin/health"),
    ("admin", "/admin/sources"),
    ("admin", "/admin/api-tokens"),
]
SERIOUS = ("serious", "critical")


def _ids(session) -> dict[str, int]:
    person = session.scalars(select(Person)).one()
    booking = session.scalars(
        select(Booking.id).where(Booking.person_id == person.id, Booking.recurrence_ics.is_(None))
    ).first()
    session.commit()
    return {"p": person.id, "b": booking}


def _easy_to_read(page) -> None:
    page.get_by_role("button", name="Lättläst").click()
    page.wait_for_load_state()


def _log_in(page, base: str, username: str | None, *, easy: bool = False) -> None:
    """Signed in as ``username`` (None: signed out), in easy-to-read mode if ``easy``."""
    forget_who_was_logged_in(page)
    page.goto(f"{base}/login")
    if username is not None:
        page.get_by_label("Användarnamn").fill(username)
        page.get_by_label("Lösenord").fill(LOGINS[username][0])
        page.get_by_role("button", name="Logga in").click()
        page.wait_for_load_state()
    if easy:
        _easy_to_read(page)


@pytest.mark.parametrize(
    ("width", "easy"), [(360, False), (1280, False), (360, True)], ids=["360", "1280", "360-easy"]
)
def test_axe_finds_no_serious_issue_on_any_page_at_phone_or_desktop_width(
    live_server, page, session, width, easy
):
    ids = _ids(session)
    axe = Axe()
    problems: list[str] = []
    page.set_viewport_size({"width": width, "height": 800})
    who = "?"
    for username, template in PAGES:
        if username != who:
            _log_in(page, live_server, username, easy=easy)
            who = username
        path = template.format(**ids)
        response = page.goto(live_server + path)
        assert response is not None and response.ok, (path, response and response.status)
        results = axe.run(page, options={"runOnly": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]})
        for violation in results.response["violations"]:
            if violation["impact"] in SERIOUS:
                where = f"{width}px{' easy-to-read' if easy else ''} {path}"
                problems.append(f"{where}: {violation['id']} ({violation['impact']})")
    assert problems == [], "\n".join(problems)


# The widest elements past the window's right edge, to say what to mend.
_TOO_WIDE = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(-3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))"""


@pytest.mark.parametrize("easy", [False, True], ids=["plain", "easy-to-read"])
def test_no_page_scrolls_sideways_on_a_phone_or_at_200_percent_zoom(
    live_server, page, session, easy
):
    # 200 % zoom of a 1280 px wide window leaves 640 CSS pixels, as a 640 px window does;
    # 360 px is a small phone. Easy-to-read mode has the larger text.
    ids = _ids(session)
    wide: list[str] = []
    who = "?"
    for username, template in PAGES:
        if username != who:
            page.set_viewport_size({"width": 1280, "height": 800})
            _log_in(page, live_server, username, easy=easy)
            who = username
        for width in (360, 640):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(live_server + template.format(**ids))
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                wide.append(f"{width}px {template}: {overflow}px {page.evaluate(_TOO_WIDE)}")
    assert wide == [], "\n".join(wide)


def _tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _log_in_with_the_keyboard(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    _tab_to(page, "#username")
    page.keyboard.type(username)
    _tab_to(page, "#password")
    page.keyboard.type(LOGINS[username][0])
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_with_the_keyboard_alone_a_caregiver_books_and_the_person_changes_a_setting(
    live_server,
    page,
    session,
    clock,
):
    ids = _ids(session)
    day = (clock.now() + timedelta(days=9)).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)

    _log_in_with_the_keyboard(page, live_server, "karin")
    page.goto(f"{live_server}/people/{ids['p']}/book")
    _tab_to(page, "#date")
    # Chromium's date field takes the digits in the order its locale shows them.
    page.keyboard.type(day.strftime("%m%d%Y"))
    _tab_to(page, "#start")
    page.keyboard.type("1415")
    _tab_to(page, "#minutes")
    page.keyboard.press("Control+A")
    page.keyboard.type("30")
    _tab_to(page, "#title")
    page.keyboard.type("Uppföljning med tangentbordet")
    _tab_to(page, "button[value=check]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_to(page, "button[value=book]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    booked = session.scalars(
        select(Booking).where(Booking.title == "Uppföljning med tangentbordet")
    ).all()
    session.commit()
    assert len(booked) == 1

    forget_who_was_logged_in(page)
    _log_in_with_the_keyboard(page, live_server, "alva")
    page.goto(f"{live_server}/people/{ids['p']}/reminders")
    _tab_to(page, "#r-kind")  # the first kind: days before, at a time of day
    _tab_to(page, "#r-days")
    page.keyboard.type("2")
    _tab_to(page, "#r-at")
    page.keyboard.type("18.00")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "2 dagar före kl. 18.00" in page.locator("#rules-h + ul").inner_text()


def test_easy_to_read_mode_has_larger_text_and_fewer_details_on_every_page_it_keeps(
    live_server, page, session
):
    ids = _ids(session)
    page.set_viewport_size({"width": 360, "height": 800})
    _log_in(page, live_server, "alva")
    visit = f"{live_server}/people/{ids['p']}/bookings/{ids['b']}"

    def text_size() -> float:
        return float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))

    page.goto(visit)
    plain_size = text_size()
    source = page.locator("dt", has_text="Källa")
    assert source.is_visible()  # where the booking came from: a detail for the curious

    _easy_to_read(page)
    page.goto(visit)
    assert text_size() >= 1.2 * plain_size
    assert source.count() == 1 and not source.is_visible()
    assert page.locator("dt", has_text="Var").is_visible()  # what matters stays
    # Kept for the whole visit: the month leaves out place and whom to meet.
    page.goto(f"{live_server}/people/{ids['p']}/month")
    assert text_size() >= 1.2 * plain_size
    hidden = page.locator(".mdetail .secondary")
    assert hidden.count() > 0
    assert all(not hidden.nth(i).is_visible() for i in range(hidden.count()))
