"""Pages and the JSON API through the Flask test client, on both databases."""

import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from calendar_app import create_app
from calendar_app.demo import LOGINS, load_demo
from calendar_app.models import Booking, Person, User
from calendar_app.services.accounts import end_all_sessions
from tests.conftest import ICS, NOW
from tests.support.helpers import do_import, event, vcalendar

SE = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def demo(session, clock):
    """The demo, placed around the real current week (as `make run` does)."""
    load_demo(session, now=clock.now())
    person = session.scalars(select(Person)).one()
    session.commit()  # end the read: the requests under test write from other connections
    return person


def login(client, username):
    password = LOGINS[username][0]
    return client.post("/login", data={"username": username, "password": password})


def this_week():
    today = NOW.astimezone(SE).date()
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=7)


def test_healthz_reports_ok_with_the_database_checked(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_healthz_reports_an_unreachable_database(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "error"


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_the_login_page_is_swedish_and_sends_a_strict_csp(client):
    response = client.get("/login")
    body = response.get_data(as_text=True)
    assert '<html lang="sv">' in body and "Logga in" in body and "Användarnamn" in body
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script" not in body and "style=" not in body


def test_a_wrong_password_is_refused_in_swedish(client, demo):
    response = client.post("/login", data={"username": "alva", "password": "fel-lösenord"})
    assert response.status_code == 401
    assert "Fel användarnamn eller lösenord." in response.get_data(as_text=True)


def test_the_demo_person_sees_the_merged_week_with_the_overlap_marked(client, demo):
    response = login(client, "alva")
    page = client.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert "Vecka" in page
    assert page.count("Krockar med ett annat besök") == 2
    assert "Återbesök, sjuksköterska" in page and "Möte med personligt ombud" in page
    assert "Boendestöd" in page


def test_english_is_available(client, demo):
    login(client, "alva")
    client.post("/language", data={"lang": "en", "next": "/"})
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert '<html lang="en">' in page and "Overlaps another visit" in page


# Written out here, not taken from Babel, so that the test does not share the formatter's
# source of names.
WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "sv": ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"],
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "sv": ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december"],
}  # fmt: skip


def _when(page: str) -> str:
    """The text of the booking page's "När"/"When" line."""
    found = re.search(r"<dt>(?:När|When)</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert found, page
    return found.group(1)


def test_dates_and_times_read_the_english_way_in_english_and_the_swedish_way_in_swedish(
    client, demo, session
):
    login(client, "alva")
    booking = session.scalars(select(Booking).where(Booking.uid.like("psyk-1%"))).one()
    start = booking.start_utc.astimezone(ZoneInfo(demo.timezone))
    end = booking.end_utc.astimezone(ZoneInfo(demo.timezone))
    session.commit()
    day = start.weekday()
    path = f"/people/{demo.id}/bookings/{booking.id}"

    swedish = _when(client.get(path).get_data(as_text=True))
    sv_date = f"{WEEKDAYS['sv'][day]} {start.day} {MONTHS['sv'][start.month - 1]}"
    assert swedish == f"{sv_date} kl. {start:%H.%M}–{end:%H.%M}"

    client.post("/language", data={"lang": "en", "next": "/"})
    english = _when(client.get(path).get_data(as_text=True))
    en_date = f"{WEEKDAYS['en'][day]} {start.day} {MONTHS['en'][start.month - 1]}"
    assert english == f"{en_date} {start:%H:%M}–{end:%H:%M}"
    assert "kl." not in english


def test_the_booking_page_shows_the_no_show_fee_and_cancellation_terms_the_source_sends(
    client, demo, session, clock
):
    at = clock.now().replace(microsecond=0) + timedelta(days=9)
    end = at + timedelta(minutes=45)
    times = (f":{at:%Y%m%dT%H%M%SZ}", f":{end:%Y%m%dT%H%M%SZ}")
    data = vcalendar(
        event(
            "terms-1",
            *times,
            "Tandläkarbesök",
            X_PK_CANCELLATION="Avboka senast 48 timmar före på 0470-123 45",
            X_PK_NO_SHOW_FEE="Uteblivet besök: 650 kr",
        ),
        event("terms-2", *times, "Fotvård"),
    )
    do_import(session, demo, data, clock.now(), provider="Folktandvården Växjö", source="terms")
    with_terms = session.scalars(select(Booking).where(Booking.uid == "terms-1")).one()
    without = session.scalars(select(Booking).where(Booking.uid == "terms-2")).one()
    assert with_terms.no_show_fee and with_terms.cancellation_terms and not without.no_show_fee
    with_terms.cancel_allowed = True  # as a booking system (RIVTA) says when it allows it
    session.commit()
    login(client, "alva")

    page = client.get(f"/people/{demo.id}/bookings/{with_terms.id}").get_data(as_text=True)
    assert "<dt>Avgift om du uteblir</dt><dd>Uteblivet besök: 650 kr</dd>" in page
    assert "<dt>Avbokning</dt><dd>Avboka senast 48 timmar före på 0470-123 45</dd>" in page
    assert "Du kan själv avboka i enhetens e-tjänst (till exempel 1177)." in page

    plain = client.get(f"/people/{demo.id}/bookings/{without.id}").get_data(as_text=True)
    assert "Fotvård" in plain
    assert "Avgift om du uteblir" not in plain and "650 kr" not in plain
    assert "<dt>Avbokning</dt>" not in plain and "e-tjänst" not in plain


def test_the_booking_page_says_whom_to_contact_for_a_synced_booking(client, demo, session):
    login(client, "alva")
    booking = session.scalars(select(Booking).where(Booking.uid.like("psyk-1%"))).one()
    session.commit()  # end the read: the app writes the audit row from its own connection
    page = client.get(f"/people/{demo.id}/bookings/{booking.id}").get_data(as_text=True)
    assert "Vuxenpsykiatrin Växjö" in page and "0470-58 60 00" in page
    assert "Kontakta Vuxenpsykiatrin Växjö för att ändra den." in page
    assert "Avboka senast 24 timmar före" in page and "Sara Nilsson" in page
    assert "Fråga efter: Sara Nilsson, sjuksköterska" in page  # the unit's contact person


def test_a_caregiver_sees_another_units_booking_as_busy_only(client, demo, session):
    login(client, "karin")  # at Vuxenpsykiatrin Växjö
    ombud = session.scalars(select(Booking).where(Booking.uid.like("ombud-1%"))).one()
    session.commit()
    page = client.get(f"/people/{demo.id}/bookings/{ombud.id}").get_data(as_text=True)
    assert "Upptagen" in page
    assert "Möte med personligt ombud" not in page and "Kungsgatan" not in page
    week = client.get(f"/people/{demo.id}/week").get_data(as_text=True)
    assert "Upptagen" in week and "Återbesök, sjuksköterska" in week
    assert "Möte med personligt ombud" not in week


def test_an_administrator_gets_no_calendar(client, demo):
    login(client, "admin")
    assert client.get(f"/people/{demo.id}/week").status_code == 403
    assert (
        client.get(f"/api/v1/people/{demo.id}/calendar?from=2026-01-01&to=2026-01-08").json[
            "error"
        ]["code"]
        == "access.denied"
    )


def test_logout_ends_the_session_on_the_server(client, demo, app):
    login(client, "alva")
    with client.session_transaction() as cookie_session:
        stolen = dict(cookie_session)
    client.post("/logout")
    with client.session_transaction() as cookie_session:
        cookie_session.update(stolen)  # replay the old cookie
    assert client.get("/").status_code == 302


def test_a_session_ended_from_the_server_stops_working_at_once(client, demo, session, clock):
    login(client, "alva")
    assert client.get("/").status_code == 302  # to the week
    user = session.scalars(select(User).where(User.username == "alva")).one()
    session.commit()
    assert end_all_sessions(session, user.id, now=clock.now()) == 1
    response = client.get(f"/people/{demo.id}/week")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_forms_refuse_a_post_without_a_csrf_token(database_url, tmp_path):
    app = create_app(
        {"DATABASE_URL": database_url.render_as_string(hide_password=False), "SECRET_KEY": "x"}
    )
    response = app.test_client().post("/login", data={"username": "a", "password": "b"})
    assert response.status_code == 400


def test_the_api_gives_the_merged_calendar_with_overlaps(client, demo):
    login(client, "alva")
    monday, sunday_end = this_week()
    response = client.get(f"/api/v1/people/{demo.id}/calendar?from={monday}&to={sunday_end}")
    assert response.status_code == 200
    items = response.json["occurrences"]
    starts = [i["start"] for i in items]
    assert starts == sorted(starts)
    clashing = {i["title"]: i["overlaps"] for i in items if i["overlaps"]}
    assert set(clashing) == {"Återbesök, sjuksköterska", "Möte med personligt ombud"}
    assert {
        "uid",
        "recurrence_id",
        "start",
        "end",
        "all_day",
        "title",
        "location",
        "provider",
        "provider_kind",
        "status",
        "source",
        "overlaps",
    } <= set(items[0])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("from=2026-01-01&to=2027-03-01", 400, "range.too_long"),
        ("from=2026-01-01", 400, "range.missing"),
        ("from=2026-13-01&to=2026-12-01", 400, "range.date_format"),
        ("from=2026-02-01&to=2026-01-01", 400, "range.invalid"),
    ],
)
def test_api_errors_have_stable_codes(client, demo, query, status, code):
    login(client, "alva")
    response = client.get(f"/api/v1/people/{demo.id}/calendar?{query}")
    assert response.status_code == status and response.json["error"]["code"] == code


def test_the_api_needs_a_login_and_says_so_with_a_code(client):
    response = client.get("/api/v1/people/1/calendar?from=2026-01-01&to=2026-01-08")
    assert response.status_code == 401 and response.json["error"]["code"] == "auth.required"


def test_the_openapi_document_describes_the_calendar_endpoint(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    operation = doc["paths"]["/api/v1/people/{person_id}/calendar"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"person_id", "from", "to"}
    assert "overlaps" in doc["components"]["schemas"]["Occurrence"]["required"]


def test_the_openapi_document_lists_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").json
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented


def test_uploading_a_calendar_file_imports_it(client, demo, session):
    login(client, "alva")
    data = (ICS / "recurring-ical-events/each_week_but_one_deleted.ics").read_bytes()
    response = client.post(
        f"/people/{demo.id}/import",
        data={"provider": "Mitt arbete", "source": "jobb", "file": (io.BytesIO(data), "work.ics")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Importerat: 1 nya" in response.get_data(as_text=True)
    session.rollback()
    imported = session.scalars(select(Booking).where(Booking.source.has(name="jobb"))).one()
    assert imported.provider.name == "Mitt arbete"
    assert imported.provider.kind.value == "personal"


def test_uploading_a_damaged_file_says_so_in_swedish_and_stores_nothing(client, demo, session):
    login(client, "alva")
    before = session.scalar(select(func.count()).select_from(Booking))
    session.commit()
    data = (ICS / "icalendar/issue_104_broken_calendar.ics").read_bytes()
    response = client.post(
        f"/people/{demo.id}/import",
        data={"provider": "Mitt arbete", "file": (io.BytesIO(data), "bad.ics")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Filen är skadad och kunde inte läsas. Ingenting importerades." in response.get_data(
        as_text=True
    )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Booking)) == before


def test_a_caregiver_cannot_import_for_someone_without_a_care_relationship(client, demo, session):
    other = Person(
        personnummer="198001022386",
        name="Bo",
        timezone="Europe/Stockholm",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    session.add(other)
    session.commit()
    login(client, "karin")
    assert client.get(f"/people/{other.id}/import").status_code == 403
    assert client.get(f"/people/{other.id}/week").status_code == 403


def test_no_page_puts_a_personnummer_in_a_link(client, demo):
    login(client, "alva")
    for path in ["/", f"/people/{demo.id}/week", f"/people/{demo.id}/agenda"]:
        page = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert demo.personnummer not in page and demo.personnummer[2:] not in page


def test_the_agenda_lists_the_coming_visits_day_by_day(client, demo):
    login(client, "alva")
    monday, _ = this_week()
    page = client.get(f"/people/{demo.id}/agenda?from={monday}").get_data(as_text=True)
    assert "Agenda" in page and "Telefonsamtal med läkare" in page and "Telefonbesök" in page
    assert "Boendestöd (flyttad en timme)" in page


def test_a_helper_lists_the_people_she_may_see_and_sees_time_and_place(client, demo):
    login(client, "maria")
    people = client.get("/").get_data(as_text=True)
    assert "Alva Lindqvist" in people
    week = client.get(f"/people/{demo.id}/week").get_data(as_text=True)
    assert "Upptagen" in week and "Sigfridsvägen 9" in week
    assert "Återbesök, sjuksköterska" not in week


def test_unknown_and_forbidden_people_get_the_same_answer(client, demo):
    login(client, "karin")
    assert client.get("/people/999999/week").status_code == 403
