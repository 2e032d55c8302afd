"""The person's calendar as a day, a month and a list: every visit with what the viewer may
see of it (unit, place, time, mode, interpreter, transport, whom they meet)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from calendar_app.models import Person
from tests.support.helpers import add_person, do_import, event, vcalendar
from tests.support.world import build_world, log_in


def _add_video_visit_with_interpreter(session, person_id: int, start: datetime, now: datetime):
    """An hour's video visit with an Arabic interpreter and transport, with Sara Nilsson."""
    person = session.get(Person, person_id)
    session.commit()
    do_import(
        session,
        person,
        vcalendar(
            event(
                "tolk",
                f":{start:%Y%m%dT%H%M%SZ}",
                f":{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
                "Bedömningssamtal",
                X_PK_MODE="video",
                X_PK_INTERPRETER="arabiska",
                X_PK_TRANSPORT="TRUE",
                X_PK_PRACTITIONER="Sara Nilsson",
            )
        ),
        now,
        source="second",
    )


def test_the_day_shows_each_visit_with_mode_interpreter_transport_and_whom_to_meet(
    client, session, now
):
    world = build_world(session, now)
    visit = datetime(2026, 12, 2, 13, tzinfo=UTC)
    _add_video_visit_with_interpreter(session, world.person_id, visit, now)
    log_in(client, "person")

    page = client.get(f"/people/{world.person_id}/today?day=2026-12-02").get_data(as_text=True)
    assert "onsdag 2 december" in page
    assert 'aria-current="page">Dag<' in page
    # Every view shows each visit with the same details: the day, the week, the month
    # (shorter, in a day's square) and the agenda.
    for view in ("today?day=2026-12-02", "week?start=2026-11-30", "month?start=2026-12-01",
                 "agenda?from=2026-12-01"):  # fmt: skip
        page = client.get(f"/people/{world.person_id}/{view}").get_data(as_text=True)
        for text in (
            "Samtal",
            "Bedömningssamtal",
            "Videobesök",
            "Tolk: arabiska",
            "Boka resa",
            "Du träffar Sara Nilsson",
            "Sigfridsvägen 9",
            "Vuxenpsykiatrin Växjö",
        ):
            assert text in page, (view, text)

    log_in(client, "helper_busy")
    for view in ("today?day=2026-12-02", "month?start=2026-12-01"):
        busy = client.get(f"/people/{world.person_id}/{view}").get_data(as_text=True)
        for text in ("Bedömningssamtal", "Tolk", "Boka resa", "Sara Nilsson", "Sigfridsvägen"):
            assert text not in busy, (view, text)
    assert busy.count("Upptagen") >= 3


def test_the_month_lists_every_day_monday_first_with_its_visits(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")

    page = client.get(f"/people/{world.person_id}/month?start=2026-12-15").get_data(as_text=True)

    assert "december 2026" in page
    days = re.findall(r'<li class="mday[^"]*">\s*<h2><a href="[^"]*day=(\d{4}-\d\d-\d\d)', page)
    assert days[0] == "2026-11-30" and days[-1] == "2027-01-03"  # whole weeks, Monday first
    assert len(days) == 35
    assert "Samtal" in page and page.count('class="clash"') == 2  # 2 December: the overlap
    nxt = client.get(f"/people/{world.person_id}/month?start=2027-01-01").get_data(as_text=True)
    assert "januari 2027" in nxt and "Samtal" not in nxt


def test_an_empty_day_says_so(client, session, now):
    person = add_person(session, now)
    from calendar_app.models import Role, User
    from tests.support.world import cheap_hash

    session.add(
        User(username="alva", display_name="Alva", password_hash=cheap_hash(), role=Role.PERSON,
             person_id=person.id)
    )  # fmt: skip
    session.commit()
    log_in(client, "alva")
    page = client.get(f"/people/{person.id}/today?day=2026-12-05").get_data(as_text=True)
    assert "Inga besök den här dagen." in page


def test_my_overview_lists_the_coming_visits_and_whom_to_contact_on_one_page(client, session, now):
    from calendar_app.demo import load_demo

    load_demo(session, now=now)
    session.commit()
    log_in_demo(client, "alva")
    person_id = session.scalars(select(Person.id)).one()
    session.commit()

    page = client.get(f"/people/{person_id}/overview").get_data(as_text=True)

    for text in (
        "Min översikt",
        "Vem ska jag kontakta?",
        "Sara Nilsson, sjuksköterska",
        "0470-58 60 00",
        "Ali Hassan, boendestödjare",
        "Personligt ombud Kronoberg",
        "Provtagning",
        "Ladda ner som PDF",
    ):
        assert text in page, text  # fmt: skip
    assert 'href="tel:0470586000"' in page

    pdf = client.get(f"/people/{person_id}/overview.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    for text in ("Min översikt", "Vårdcentralen Teleborg", "Sara Nilsson", "Provtagning"):
        assert text.encode("cp1252") in pdf.data, text


def test_the_overview_and_its_pdf_say_how_each_visit_happens(client, session, now):
    world = build_world(session, now)
    start = (now + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    _add_video_visit_with_interpreter(session, world.person_id, start, now)
    log_in(client, "person")

    page = client.get(f"/people/{world.person_id}/overview").get_data(as_text=True)
    pdf = client.get(f"/people/{world.person_id}/overview.pdf").data

    for text in ("Bedömningssamtal", "Videobesök", "Tolk: arabiska", "Boka resa"):
        assert text in page, text
        assert text.encode("cp1252") in pdf, text


def test_a_caregiver_sees_only_the_units_named_to_them_in_the_overview(client, session, now):
    world = build_world(session, now)
    log_in(client, "caregiver")
    page = client.get(f"/people/{world.person_id}/overview").get_data(as_text=True)
    assert "Vuxenpsykiatrin Växjö" in page
    assert "Boendestöd Växjö kommun" not in page  # another unit's visit: busy only


def log_in_demo(client, username: str) -> None:
    from calendar_app.demo import LOGINS

    password = LOGINS[username][0]
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302


def test_easy_to_read_mode_is_chosen_once_and_kept_on_every_page(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")
    week = f"/people/{world.person_id}/week"
    assert '<body class="easy">' not in client.get(week).get_data(as_text=True)

    switched = client.post("/easy-read", data={"easy": "on", "next": week})

    assert switched.status_code == 302 and switched.location.endswith(week)
    page = client.get(week).get_data(as_text=True)
    assert '<body class="easy">' in page and 'aria-pressed="true"' in page
    assert '<body class="easy">' in client.get(f"/people/{world.person_id}/agenda").get_data(
        as_text=True
    )
    client.post("/easy-read", data={"easy": "off", "next": week})
    assert '<body class="easy">' not in client.get(week).get_data(as_text=True)


def _picture(width: int, height: int, fmt: str = "PNG") -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, fmt)
    return out.getvalue()


def test_a_caregivers_own_photo_is_shown_with_the_visits_they_book(client, session, now):
    from datetime import date, time
    from io import BytesIO

    from calendar_app.models import User
    from calendar_app.services.booking import VisitDraft, book_visit, reach_by_id
    from tests.support.world import actor

    world = build_world(session, now)
    log_in(client, "caregiver")

    saved = client.post(
        "/account/photo",
        data={"photo": (BytesIO(_picture(300, 400)), "jag.png")},
        content_type="multipart/form-data",
    )

    assert saved.status_code == 302
    caregiver = session.scalars(select(User).where(User.username == "caregiver")).one()
    digest = caregiver.photo
    session.commit()
    assert digest and len(digest) == 64
    assert f"/photos/{digest}.jpg" in client.get("/account").get_data(as_text=True)
    photo = client.get(f"/photos/{digest}.jpg")
    assert photo.status_code == 200 and photo.data.startswith(b"\xff\xd8")  # our own JPEG

    book_visit(
        session,
        actor(session, "caregiver"),
        reach_by_id(session, actor(session, "caregiver"), world.person_id),
        VisitDraft(day=date(2026, 12, 9), start=time(13), minutes=30, title="Samtal"),
        now=now,
    )
    log_in(client, "person")
    day = client.get(f"/people/{world.person_id}/today?day=2026-12-09").get_data(as_text=True)
    assert f"/photos/{digest}.jpg" in day and "Du träffar Caregiver" in day


def test_a_file_that_is_no_usable_picture_is_refused_and_nothing_changes(client, session, now):
    from io import BytesIO

    from calendar_app.models import Photo, User

    build_world(session, now)
    log_in(client, "caregiver")
    for data, message in (
        (b"", "Välj en bildfil."),
        (b"%PDF-1.4 not a picture", "Filen är inte en bild"),
        (_picture(8, 8), "Bilden är för liten"),
    ):
        refused = client.post(
            "/account/photo",
            data={"photo": (BytesIO(data), "x.png")},
            content_type="multipart/form-data",
            follow_redirects=True,
        )
        assert message in refused.get_data(as_text=True), message
    assert session.scalars(select(User.photo).where(User.username == "caregiver")).one() is None
    assert session.scalars(select(Photo)).first() is None
    session.commit()
    log_in(client, "person")
    assert client.post("/account/photo").status_code == 403


def test_the_units_day_lists_its_own_visits_across_people_and_audits_each_person(
    client, session, now
):
    from calendar_app.models import AuditEvent

    world = build_world(session, now)
    log_in(client, "caregiver")

    page = client.get("/unit/day?day=2026-12-02").get_data(as_text=True)

    assert "Vuxenpsykiatrin Växjö" in page and "onsdag 2 december" in page
    assert "Samtal" in page and "Alva Lindqvist" in page
    assert "Boendestöd" not in page  # another unit's visit the same morning
    rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "unit.day_list")).all()
    assert [(r.person_id, r.detail) for r in rows] == [(world.person_id, "2026-12-02")]
    session.commit()
    empty = client.get("/unit/day?day=2026-12-03").get_data(as_text=True)
    assert "Inga besök den här dagen." in empty
    assert client.get("/unit/day?day=igår").status_code == 400
    log_in(client, "person")
    assert client.get("/unit/day").status_code == 403


def test_the_booking_pages_script_gets_only_the_warnings_while_the_form_gets_the_page(
    client, session, now
):
    world = build_world(session, now)
    log_in(client, "caregiver")
    proposed = {"date": "2026-12-02", "start": "10:15", "minutes": "30", "action": "check"}
    url = f"/people/{world.person_id}/book"

    live = client.post(url, data=proposed, headers={"X-Requested-With": "fetch"})
    page = client.post(url, data=proposed)

    fragment = live.get_data(as_text=True)
    assert live.status_code == 200 and "<html" not in fragment
    assert 'class="check-result"' in fragment and "Krockar med" in fragment
    assert "<html" in page.get_data(as_text=True) and "Krockar med" in page.get_data(as_text=True)
    bad = client.post(
        url, data={**proposed, "date": "2026-13-40"}, headers={"X-Requested-With": "fetch"}
    )
    assert bad.status_code == 400 and "<html" not in bad.get_data(as_text=True)
