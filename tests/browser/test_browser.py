"""A real headless Chromium (Debian's) driven by Playwright: log in and see the week."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calendar_app.demo import LOGINS
from tests.support.helpers import forget_who_was_logged_in

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
    # Whom she will meet, with the photo served from our own site.
    photo = page.get_by_role("img", name="Foto av Sara Nilsson")
    assert photo.is_visible()
    assert photo.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert "/photos/" in (photo.get_attribute("src") or "")
    assert (
        page.get_by_role("link", name="Hitta hit (karta, öppnas i ett nytt fönster)").count() == 1
    )
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


def _log_in_as(page, base: str, username: str) -> None:
    forget_who_was_logged_in(page)
    page.goto(f"{base}/login")
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(LOGINS[username][0])
    with page.expect_navigation():
        page.get_by_role("button", name="Logga in").click()


def _demo_ids(session) -> tuple[int, date]:
    from sqlalchemy import select

    from calendar_app.models import Booking, Person

    person_id = session.scalars(select(Person.id)).one()
    clash = session.scalars(select(Booking).where(Booking.uid.startswith("psyk-1"))).one()
    session.commit()
    return person_id, clash.start_utc.astimezone(ZoneInfo("Europe/Stockholm")).date()


def _pdf_pages(data: bytes) -> int:
    """How many pages a PDF has: its page objects, and the page tree's count must agree."""
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    counts = {int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)}
    counts |= {int(n) for n in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", data)}
    assert counts == {pages} or not counts, (pages, counts)
    return pages


def _pdf_text(data: bytes) -> str:
    """The strings the app's own PDF draws (fpdf2 writes it uncompressed, in Windows-1252,
    one ``(…) Tj`` per line): enough to read it without a PDF library."""
    assert b"/FlateDecode" not in data, "the overview PDF is compressed now: read it otherwise"
    drawn = re.findall(rb"\(((?:[^\\()]|\\.)*)\)\s*Tj", data)
    unescaped = [re.sub(rb"\\(.)", rb"\1", s) for s in drawn]
    return "\n".join(s.decode("cp1252") for s in unescaped)


def test_the_caregiver_is_warned_of_a_clash_and_books_a_suggested_time(live_server, page, session):
    person_id, clash_day = _demo_ids(session)
    _log_in_as(page, live_server, "karin")
    page.goto(f"{live_server}/people/{person_id}/book")

    page.get_by_label("Datum", exact=True).fill(clash_day.isoformat())
    page.get_by_label("Starttid").fill("10:15")
    page.get_by_label("Längd i minuter").fill("30")
    page.get_by_label("Vad", exact=True).fill("Läkemedelsgenomgång")
    # The page's script checks while the caregiver types: the warning comes unasked.
    live = page.locator("#check-live .check-result")
    live.wait_for()
    assert "Krockar med" in live.inner_text()
    with page.expect_navigation():
        page.get_by_role("button", name="Kontrollera").click()
    warnings = page.locator(".check-result").inner_text()
    assert "Krockar med" in warnings

    with page.expect_navigation():
        page.get_by_role("button", name="Föreslå tider").click()
    first = page.locator("#sugg-h ~ form.card").first
    suggested = first.locator("strong").inner_text()
    with page.expect_navigation():
        first.get_by_role("button", name="Boka den här tiden").click()
    from sqlalchemy import select

    from calendar_app.models import Booking

    booked = session.scalars(select(Booking).where(Booking.title == "Läkemedelsgenomgång")).all()
    session.commit()
    assert len(booked) == 1 and booked[0].clash_override_reason is None
    assert suggested  # the time shown is the time booked
    local = booked[0].start_utc.astimezone(ZoneInfo("Europe/Stockholm"))
    assert f"kl. {local:%H.%M}" in suggested


def test_the_person_prints_her_overview_on_one_calm_page(live_server, page, session):
    person_id, _day = _demo_ids(session)
    _log_in_as(page, live_server, "alva")
    page.get_by_role("link", name="Min översikt").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Min översikt")

    page.emulate_media(media="print")

    assert not page.locator("header.site").is_visible()
    assert page.get_by_text("Sara Nilsson, sjuksköterska").is_visible()
    contacts = page.locator("section[aria-labelledby=contacts-h]")
    phones = [t.strip() for t in contacts.locator("a[href^='tel:']").all_inner_texts()]
    assert len(phones) == 4 and all(phones)  # the demo's four units, each with a phone
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    assert _pdf_pages(pdf) == 1, "the printed overview does not fit on one A4 paper"
    with page.expect_download() as download:
        page.emulate_media(media="screen")
        page.get_by_role("link", name="Ladda ner som PDF").click()
    assert download.value.suggested_filename == "min-oversikt.pdf"
    own = Path(download.value.path()).read_bytes()
    assert own.startswith(b"%PDF") and _pdf_pages(own) == 1
    text = _pdf_text(own)
    for phone in phones:
        assert phone in text, f"{phone} is missing from the PDF"


def test_the_person_changes_what_a_unit_may_see(live_server, page, session):
    person_id, _day = _demo_ids(session)
    _log_in_as(page, live_server, "alva")
    page.get_by_role("link", name="Inställningar").click()
    card = page.locator("form.card").filter(has_text="Vuxenpsykiatrin Växjö").first
    card.get_by_label("Vuxenpsykiatrin Växjö ser mina andra besök som").select_option("time_place")
    with page.expect_navigation():
        card.get_by_role("button", name="Spara").click()
    assert page.get_by_text("Ditt val är sparat.").count() == 1

    _log_in_as(page, live_server, "karin")
    page.goto(f"{live_server}/people/{person_id}/week")
    assert "Personligt ombud Kronoberg" in page.locator(".week").inner_text()
