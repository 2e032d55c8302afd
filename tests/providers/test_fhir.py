"""The FHIR R4 adapter against a local FHIR server serving HL7's R4 examples (and
searchset bundles built from them): the patient found by personnummer without it in any
URL, paging, status, practitioner with photo, place and mode; STU3 refused; every way a
read can fail; and a FHIR source kept current by the sync engine and the real scheduler."""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from io import BytesIO
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from calendar_app.providers import AdapterRead, ProviderError, SourceConfig, Window, fhir
from calendar_app.providers.fhir import FhirAdapter
from tests.support.fhir_server import CORPUS_STU3, Fault, FhirServer, corpus_resource, fhir_server
from tests.support.helpers import PNR_ALVA, PNR_BO, wait_for
from tests.support.oidc_broker import free_port

LOCAL = frozenset({"127.0.0.1"})
WINDOW_2013 = Window(datetime(2013, 1, 1, tzinfo=UTC), datetime(2014, 1, 1, tzinfo=UTC))
PNR = PNR_ALVA


@pytest.fixture
def server() -> Iterator[FhirServer]:
    with fhir_server() as running:
        running.load_r4_examples()
        running.add_patient(corpus_resource("Patient-example"), PNR)
        yield running


def config(server: FhirServer, *, timeout: float = 5.0, max_bytes: int = 1024 * 1024,
           personnummer: str = PNR, allowed: frozenset[str] = LOCAL,
           **secrets: str) -> SourceConfig:  # fmt: skip
    return SourceConfig(
        settings={},
        secrets={"url": server.base, **secrets},
        default_zone="Europe/Stockholm",
        max_bytes=max_bytes,
        timeout=timeout,
        allowed_hosts=allowed,
        personnummer=personnummer,
    )


def read(server: FhirServer, cursor: Mapping[str, str] | None = None, *,
         window: Window = WINDOW_2013, **kw) -> AdapterRead:  # fmt: skip
    return FhirAdapter().read(config(server, **kw), window, cursor or {})


def failure(server: FhirServer, **kw) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        read(server, **kw)
    error = caught.value
    # Nothing the server said, no address and no personnummer is ever in the message.
    for secret in (PNR, PNR[2:], server.base, "127.0.0.1"):
        assert secret not in str(error)
    return error


def appointment(ident: str, when: datetime, *, minutes: int = 60, status: str = "booked",
                example: str = "Appointment-example", **changes: object) -> dict:  # fmt: skip
    """A corpus appointment with another id, time and status (``changes`` win)."""
    resource = copy.deepcopy(corpus_resource(example))
    resource.update(
        id=ident,
        status=status,
        start=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(when + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    resource.update(changes)
    return resource


def png(width: int = 300, height: int = 400) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


def bookings(result: AdapterRead) -> dict:
    assert result.read is not None
    return {b.uid: b for b in result.read.bookings}


# --- what a read delivers ---------------------------------------------------------------


def test_the_hl7_examples_are_read_with_practitioners_place_status_and_mode(server):
    result = read(server)
    found = bookings(result)
    assert result.read is not None and result.read.complete
    # Appointment-examplereq is a proposal with no time yet: nothing to show, nothing wrong.
    assert set(found) == {"Appointment/example", "Appointment/2docs"}
    assert result.read.skipped == ()

    example = found["Appointment/example"]
    assert (example.start_utc, example.end_utc) == (
        datetime(2013, 12, 10, 9, 0, tzinfo=UTC),
        datetime(2013, 12, 10, 11, 0, tzinfo=UTC),
    )
    assert example.status == "confirmed"
    assert example.title == "Discussion on the results of your recent MRI"
    assert example.practitioner_name == "Adam Careful"
    assert example.location == (
        "South Wing, second floor, Galapagosweg 91, Building A, 9105 PZ Den Burg"
    )
    assert example.mode == "in_person"
    assert not example.all_day and example.recurrence_key == ""

    two = found["Appointment/2docs"]
    assert two.practitioner_name == "Adam Careful, Luigi Maas"
    assert two.mode == "phone"  # its participant "Phone Call" is no one: it says how
    assert two.location == ""


def test_the_personnummer_travels_only_in_the_body_of_a_post(server):
    read(server)
    [search] = [r for r in server.requests if r.path.endswith("/Patient/_search")]
    assert search.method == "POST"
    assert unquote_plus(search.body.decode()) == f"identifier=urn:oid:1.2.752.129.2.1.3.1|{PNR}"
    for seen in server.requests:
        assert PNR not in seen.path + seen.query_string and PNR[2:] not in seen.query_string
    appointment_search = [r for r in server.requests if r.path.endswith("/Appointment")]
    assert "patient=Patient%2Fexample" in appointment_search[0].query_string


def test_a_patient_whose_id_is_the_personnummer_is_searched_by_post_too(server):
    patient = copy.deepcopy(corpus_resource("Patient-example"))
    patient["id"] = PNR_BO
    server.add_patient(patient, PNR_BO)
    bo = [{"actor": {"reference": f"Patient/{PNR_BO}"}}]
    server.add(appointment("bo", datetime(2013, 6, 3, 8, tzinfo=UTC), participant=bo))
    assert set(bookings(read(server, personnummer=PNR_BO))) == {"Appointment/bo"}
    for seen in server.requests:
        assert PNR_BO not in seen.path + seen.query_string


def test_every_page_is_followed_and_every_appointment_read_once(server, monkeypatch):
    monkeypatch.setattr(fhir, "PAGE_SIZE", 2)
    start = datetime(2013, 3, 4, 9, tzinfo=UTC)
    for n in range(7):
        server.add(appointment(f"p{n}", start + timedelta(days=n)))
    found = bookings(read(server))
    assert {f"Appointment/p{n}" for n in range(7)} <= set(found)
    assert len(found) == 9  # and the two corpus appointments
    pages = [r for r in server.requests if "/Appointment" in r.path and r.method == "GET"]
    assert len(pages) == 5  # 9 matches, 2 a page


def test_only_the_window_is_asked_for(server):
    server.add(appointment("later", datetime(2014, 2, 1, 9, tzinfo=UTC)))
    assert "Appointment/later" not in bookings(read(server))
    window = Window(datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC))
    assert set(bookings(read(server, window=window))) == {"Appointment/later"}


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("proposed", "tentative"),
        ("pending", "tentative"),
        ("waitlist", "tentative"),
        ("booked", "confirmed"),
        ("arrived", "confirmed"),
        ("checked-in", "confirmed"),
        ("fulfilled", "confirmed"),
        ("noshow", "confirmed"),
        ("cancelled", "cancelled"),
        ("entered-in-error", None),  # never happened: left out, so a stored one goes
    ],
)
def test_each_status_maps_to_ours(server, status, ours):
    server.add(appointment("s", datetime(2013, 5, 6, 9, tzinfo=UTC), status=status))
    found = bookings(read(server))
    if ours is None:
        assert "Appointment/s" not in found
    else:
        assert found["Appointment/s"].status == ours


@pytest.mark.parametrize(
    ("field", "value", "mode"),
    [
        ("serviceType", [{"coding": [{"system": fhir._PARTICIPATION_MODE, "code": "PHONE"}]}],
         "phone"),
        ("serviceType", [{"coding": [{"system": fhir._PARTICIPATION_MODE, "code": "VIDEOCONF"}]}],
         "video"),
        ("serviceType", [{"coding": [{"system": "http://snomed.info/sct", "code": "448337001"}]}],
         "video"),
        ("serviceType", [{"text": "Videobesök"}], "video"),
        ("appointmentType", {"coding": [{"code": "TEL", "display": "Telefonsamtal"}]}, "phone"),
        ("serviceType", [{"text": "Samtal på mottagningen"}], "in_person"),
    ],
)  # fmt: skip
def test_the_mode_comes_from_service_and_appointment_type_where_they_say_so(
    server, field, value, mode
):
    server.add(appointment("m", datetime(2013, 5, 6, 9, tzinfo=UTC), **{field: value}))
    assert bookings(read(server))["Appointment/m"].mode == mode


def test_an_interpreter_participant_is_shown_as_a_booked_interpreter(server):
    resource = appointment("tolk", datetime(2013, 5, 6, 9, tzinfo=UTC))
    resource["participant"].append(
        {"type": [{"coding": [{"system": fhir._TRANSLATOR[0], "code": "TRANS"}]}],
         "actor": {"display": "Tolk, arabiska"}, "status": "accepted"}
    )  # fmt: skip
    server.add(resource)
    assert bookings(read(server))["Appointment/tolk"].interpreter


def searchset(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def test_damaged_appointments_are_skipped_with_reasons_and_the_rest_is_read(server):
    day = datetime(2013, 5, 6, 9, tzinfo=UTC)
    server.searchset_override = searchset(
        corpus_resource("Appointment-example"),
        corpus_resource("Appointment-examplereq"),  # proposed, no time yet: left out quietly
        appointment("nostart", day, start=None),
        appointment("nozone", day, start="2013-05-06T09:00:00"),
        appointment("status", day, status="maybe"),
        appointment("backwards", day, end="2013-05-06T08:00:00Z"),
        appointment("minutes", day, end=None, minutesDuration=45),
        appointment("far", day, start="2300-01-01T09:00:00Z", end="2300-01-01T10:00:00Z"),
        {**appointment("badid", day), "id": "a/b"},
    )
    result = read(server)
    assert result.read is not None
    skipped = {s.uid: s.code for s in result.read.skipped}
    assert skipped == {
        "Appointment/nostart": "event.no_start",
        "Appointment/nozone": "event.damaged",
        "Appointment/status": "event.damaged",
        "Appointment/backwards": "event.end_before_start",
        "Appointment/far": "event.date_out_of_range",
        None: "event.damaged",
    }
    found = bookings(result)
    assert set(found) == {"Appointment/example", "Appointment/minutes"}
    assert found["Appointment/minutes"].end_utc == day + timedelta(minutes=45)


def test_practitioners_not_included_are_read_one_by_one(server):
    server.include_supported = False
    found = bookings(read(server))
    assert found["Appointment/example"].practitioner_name == "Adam Careful"
    reads = [r.path for r in server.requests if r.path.endswith(("/Practitioner/example",
                                                                  "/Location/1"))]  # fmt: skip
    assert sorted(reads) == ["/fhir/Location/1", "/fhir/Practitioner/example"]  # once each


def test_a_practitioner_that_cannot_be_read_is_named_as_the_appointment_names_it(server):
    server.include_supported = False
    del server.resources["Practitioner/example"]
    assert bookings(read(server))["Appointment/example"].practitioner_name == "Dr Adam Careful"


# --- photos -----------------------------------------------------------------------------


def with_photo(server: FhirServer, photo: dict) -> None:
    practitioner = copy.deepcopy(corpus_resource("Practitioner-example"))
    practitioner["photo"] = [photo]
    server.add(practitioner)


def test_a_photo_at_an_address_is_fetched_re_encoded_and_named_by_digest(server):
    original = png()
    server.files["/photos/adam.png"] = (original, "image/png")
    with_photo(server, {"contentType": "image/png", "url": server.url("/photos/adam.png")})
    result = read(server)
    assert result.read is not None
    [photo] = result.read.photos
    assert bookings(result)["Appointment/example"].practitioner_photo == photo.digest
    assert photo.data[:3] == b"\xff\xd8\xff" and photo.data != original  # our own JPEG
    assert (photo.width, photo.height) == (300, 400)

    # The next read knows the picture from its cursor: not fetched again, and unchanged.
    before = sum(r.path == "/photos/adam.png" for r in server.requests)
    again = read(server, result.cursor)
    assert again.read is None
    assert sum(r.path == "/photos/adam.png" for r in server.requests) == before


def test_an_inline_photo_is_re_encoded_and_scaled_down(server):
    with_photo(server, {"contentType": "image/png",
                        "data": base64.b64encode(png(2000, 1000)).decode()})  # fmt: skip
    result = read(server)
    assert result.read is not None
    [photo] = result.read.photos
    assert (photo.width, photo.height) == (512, 256)


@pytest.mark.parametrize(
    "photo",
    [
        {"url": "/photos/page.html"},  # a web page, not a picture
        {"url": "http://10.0.0.1/adam.png"},  # a private address
        {"data": "not base64!"},
        {"data": base64.b64encode(b"GIF89a broken").decode()},
        {"data": base64.b64encode(png(4, 4)).decode()},  # a tracking pixel, not a person
    ],
)
def test_a_photo_that_cannot_be_used_is_left_out_and_the_read_goes_on(server, photo):
    server.files["/photos/page.html"] = (b"<!doctype html><p>Hej", "text/html")
    if photo.get("url", "").startswith("/"):
        photo = {"url": server.url(photo["url"])}
    with_photo(server, photo)
    result = read(server)
    assert result.read is not None and result.read.photos == ()
    example = bookings(result)["Appointment/example"]
    assert example.practitioner_photo is None and example.practitioner_name == "Adam Careful"
    assert not any(r.path.endswith("adam.png") for r in server.requests)


def test_credentials_go_to_the_fhir_server_only(server):
    with fhir_server() as elsewhere:
        elsewhere.files["/adam.png"] = (png(), "image/png")
        with_photo(server, {"url": elsewhere.url("/adam.png").replace("127.0.0.1", "localhost")})
        result = read(server, allowed=frozenset({"127.0.0.1", "localhost"}), token="hemlig")
        assert result.read is not None and len(result.read.photos) == 1
        assert all(r.headers.get("Authorization") == "Bearer hemlig" for r in server.requests)
        [fetched] = elsewhere.requests
        assert "Authorization" not in fetched.headers


def test_basic_authentication_is_sent_with_every_request(server):
    read(server, username="alva", password="lösen")
    expected = "Basic " + base64.b64encode("alva:lösen".encode("latin-1")).decode()
    assert {r.headers.get("Authorization") for r in server.requests} == {expected}


# --- versions ---------------------------------------------------------------------------


def stu3_bundle(name: str) -> dict:
    import json

    return json.loads((CORPUS_STU3 / f"{name}.json").read_text())


@pytest.mark.parametrize("version", ["3.0.1", "3.0.2", "1.0.2", "5.0.0", "4.3.0"])
def test_a_server_of_another_fhir_version_is_refused(server, version):
    server.fhir_version = version
    server.searchset_override = stu3_bundle("Bundle-hal-dr-y-appts")
    error = failure(server)
    assert error.code == "fhir.version" and version in error.message
    assert not any("/Appointment" in r.path for r in server.requests)


def test_stu3_files_from_a_server_claiming_r4_are_refused_not_misread(server):
    # The Argonaut STU3 bundle fits R4's shape; its STU3 code systems give it away.
    server.searchset_override = stu3_bundle("Bundle-hal-dr-y-appts")
    error = failure(server)
    assert (error.code, "STU3" in error.message) == ("fhir.version", True)


def test_an_answer_labelled_stu3_is_refused(server):
    server.content_type = "application/fhir+json; fhirVersion=3.0"
    assert failure(server).code == "fhir.version"


def test_a_capability_statement_without_version_is_refused(server):
    server.fhir_version = ""
    assert failure(server).code == "fhir.version"


# --- failures: each kind has its code, and the source stays as it was -----------------


@pytest.mark.parametrize(
    ("prefix", "fault", "code"),
    [
        ("/fhir/metadata", Fault(status=401), "source.auth"),
        ("/fhir/Patient", Fault(status=403), "source.auth"),
        ("/fhir/Appointment", Fault(status=500), "source.http"),
        ("/fhir/metadata", Fault(status=404), "source.http"),
        ("/fhir/metadata", Fault(status=200, body=b"<!doctype html><title>Logga in</title>",
                                 content_type="text/html"), "source.not_fhir"),
        ("/fhir/metadata", Fault(status=200, body=b'{"resourceType": "Patient"'),
         "source.protocol"),
        ("/fhir/metadata", Fault(status=200, body=b"[1, 2]"), "source.protocol"),
        ("/fhir/metadata", Fault(status=200, body=b'{"resourceType": "Bundle"}'),
         "source.not_fhir"),
        ("/fhir/Appointment", Fault(status=200, body=b'{"resourceType": "OperationOutcome"}'),
         "source.protocol"),
        ("/fhir/metadata", Fault(status=302, headers={"Location": "http://10.0.0.1/fhir"}),
         "source.address_blocked"),
        ("/fhir/Patient", Fault(status=307, headers={"Location": "/fhir/Patient/_other"}),
         "source.redirects"),
    ],
)  # fmt: skip
def test_each_failure_has_its_own_code(server, prefix, fault, code):
    server.faults[prefix] = fault
    assert failure(server).code == code


def test_a_server_too_slow_for_the_deadline_times_out(server):
    server.faults["/fhir/Appointment"] = Fault(status=200, body=b"{}", delay=1.5)
    began = time.monotonic()
    assert failure(server, timeout=0.3).code == "source.timeout"
    assert time.monotonic() - began < 1.4


def test_a_closed_port_is_unreachable(server):
    server.base = f"http://127.0.0.1:{free_port()}/fhir"
    assert failure(server).code == "source.unreachable"


def test_a_private_address_needs_the_allow_list(server):
    error = failure(server, allowed=frozenset())
    assert error.code == "source.address_blocked" and server.requests == []


def test_an_answer_beyond_the_size_cap_is_refused(server):
    assert failure(server, max_bytes=2000).code == "ics.too_large"


def test_an_unknown_or_doubled_patient_is_refused(server):
    assert failure(server, personnummer=PNR_BO).code == "fhir.patient_not_found"
    twin = copy.deepcopy(corpus_resource("Patient-example"))
    twin["id"] = "twin"
    server.add_patient(twin, PNR)
    assert failure(server).code == "fhir.patient_ambiguous"


def test_a_next_page_elsewhere_or_in_a_circle_is_refused(server):
    bundle = searchset()
    bundle["link"] = [{"relation": "next", "url": "https://example.org/fhir/Appointment?p=2"}]
    server.searchset_override = bundle
    assert failure(server).code == "fhir.paging"
    bundle["link"] = [{"relation": "next", "url": f"{server.base}/Appointment?patient=x&p=2"}]
    assert failure(server).code == "fhir.paging"  # the same next page again and again


def test_too_many_pages_are_refused_rather_than_read_in_part(server, monkeypatch):
    monkeypatch.setattr(fhir, "PAGE_SIZE", 1)
    monkeypatch.setattr(fhir, "MAX_PAGES", 2)
    assert len(bookings(read(server))) == 2  # two pages: read whole
    server.add(appointment("third", datetime(2013, 5, 6, 9, tzinfo=UTC)))
    assert failure(server).code == "fhir.too_many"


# --- adding a source --------------------------------------------------------------------


def test_prepare_seals_the_address_and_token_and_shows_the_host(server):
    prepared = FhirAdapter().prepare({"url": server.base + "/", "token": "abc"}, LOCAL)
    assert prepared.secrets == {"url": server.base, "token": "abc"}
    assert prepared.display == "http://127.0.0.1/…"
    assert "abc" not in str(prepared.settings) and server.base not in str(prepared.settings)


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "webcal://example.com/fhir"},
        {"url": "ftp://example.com/fhir"},
        {"url": "https://u:p@example.com/fhir"},
        {"url": "https://example.com/fhir", "username": "u", "token": "t"},
    ],
)
def test_prepare_refuses_what_cannot_be_used(fields):
    with pytest.raises(ProviderError) as caught:
        FhirAdapter().prepare(fields, frozenset())
    assert caught.value.code == "source.url"


# --- kept current through the sync engine, the pages and the real scheduler -------------


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SOURCE_ALLOWED_HOSTS": "127.0.0.1", "SYNC_TIMEOUT_SECONDS": 2}


def visits(server: FhirServer, first: datetime, count: int) -> None:
    for n in range(count):
        server.add(appointment(f"v{n}", first + timedelta(days=n)))


def add_fhir_source(app, session, person_id: int, server: FhirServer, now: datetime) -> int:
    from calendar_app.services import sources, sync
    from calendar_app.services.access import Actor

    source = sources.add_source(
        session,
        Actor.operator(),
        person_id=person_id,
        adapter="fhir",
        fields={"url": server.base},
        unit_name="Psykiatrimottagningen Växjö",
        name="journalen",
        poll_minutes=5,
        policy=sync.SyncPolicy.from_config(app.config),
        now=now,
    )
    return source.id


def stored(session, person_id: int) -> dict:
    from sqlalchemy import select

    from calendar_app.models import Booking

    session.expire_all()
    rows = {
        b.uid: (b.status.value, b.start_utc, b.practitioner_photo)
        for b in session.scalars(select(Booking).where(Booking.person_id == person_id))
        if b.uid.startswith("Appointment/")
    }
    session.commit()
    return rows


def test_a_fhir_source_keeps_the_calendar_current_through_sync(app, session, now, server):
    """Read by the sync engine, then on the server one visit moves, one is cancelled and one
    was entered in error; the next round shows all three. The photo is ours."""
    from sqlalchemy import select

    from calendar_app.models import Photo
    from calendar_app.services import sync
    from tests.support.helpers import add_person

    person = add_person(session, now)
    server.files["/photos/adam.png"] = (png(), "image/png")
    with_photo(server, {"url": server.url("/photos/adam.png")})
    first_day = datetime(2026, 12, 1, 9, tzinfo=UTC)
    visits(server, first_day, 5)
    add_fhir_source(app, session, person.id, server, now)
    factory = app.extensions["session_factory"]
    policy = sync.SyncPolicy.from_config(app.config)

    [first] = sync.sync_due(factory, policy, worker="t", clock=lambda: now)
    assert first.summary is not None and first.summary.added == 5, first.line()
    before = stored(session, person.id)
    [digest] = {photo for _, _, photo in before.values()}
    assert session.scalars(select(Photo.digest)).all() == [digest]
    session.commit()

    moved = first_day + timedelta(hours=4)
    server.appointments["v0"].update(
        start=moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(moved + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    server.appointments["v1"]["status"] = "cancelled"
    server.appointments["v2"]["status"] = "entered-in-error"
    later = now + timedelta(hours=1)
    [second] = sync.sync_due(factory, policy, worker="t", clock=lambda: later)
    assert second.summary is not None, second.line()
    after = stored(session, person.id)
    assert after["Appointment/v0"][:2] == ("confirmed", moved)
    assert after["Appointment/v1"][0] == after["Appointment/v2"][0] == "cancelled"
    assert after["Appointment/v3"] == before["Appointment/v3"]

    # Unchanged on the server: the next round changes nothing and fetches no photo.
    photo_fetches = sum(r.path == "/photos/adam.png" for r in server.requests)
    [third] = sync.sync_due(factory, policy, worker="t", clock=lambda: later + timedelta(hours=1))
    assert third.unchanged, third.line()
    assert sum(r.path == "/photos/adam.png" for r in server.requests) == photo_fetches


def test_the_booking_page_shows_the_practitioners_photo_from_our_own_site(
    app, client, session, now, server
):
    from sqlalchemy import select

    from calendar_app.models import Booking
    from calendar_app.services import sync
    from tests.support.world import build_world, log_in

    world = build_world(session, now)
    server.files["/photos/adam.png"] = (png(), "image/png")
    with_photo(server, {"url": server.url("/photos/adam.png")})
    visits(server, datetime(2026, 12, 4, 9, tzinfo=UTC), 1)
    add_fhir_source(app, session, world.person_id, server, now)
    factory = app.extensions["session_factory"]
    sync.sync_due(factory, sync.SyncPolicy.from_config(app.config), worker="t", clock=lambda: now)
    booking = session.scalars(select(Booking).where(Booking.uid == "Appointment/v0")).one()
    booking_id, digest = booking.id, booking.practitioner_photo
    session.commit()

    photo_url = f"/photos/{digest}.jpg"
    assert client.get(photo_url).status_code == 302  # not without logging in
    log_in(client, "person")
    page = client.get(f"/people/{world.person_id}/bookings/{booking_id}").get_data(as_text=True)
    assert "Adam Careful" in page and f'src="{photo_url}"' in page
    assert 'alt="Foto av Adam Careful"' in page
    assert server.base not in page and "adam.png" not in page  # the browser never calls them
    photo = client.get(photo_url)
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data[:3] == b"\xff\xd8\xff"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(photo_url, headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    assert client.get(f"/photos/{'0' * 64}.jpg").status_code == 404


def test_the_scheduler_keeps_a_fhir_source_current_on_its_own(app, session, server, clock):
    """A real APScheduler runs the sync job every second; the server changes underneath."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from calendar_app.scheduler import jobs
    from tests.support.helpers import add_person

    now = clock.now()
    person = add_person(session, now)
    first_day = (now + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
    visits(server, first_day, 4)
    add_fhir_source(app, session, person.id, server, now)
    app.config["SYNC_SECONDS"] = 1
    app.config["SCHEDULER_REPLAN_MINUTES"] = 0
    scheduler = jobs.build(app, BackgroundScheduler(timezone="UTC"))  # on the app's clock
    scheduler.start()
    try:
        wait_for(lambda: len(stored(session, person.id)) == 4)
        moved = first_day + timedelta(hours=5)
        server.appointments["v0"].update(
            start=moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(moved + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        server.appointments["v1"]["status"] = "cancelled"
        clock.advance(timedelta(minutes=10))  # the poll interval has passed

        def current() -> bool:
            rows = stored(session, person.id)
            return rows["Appointment/v0"][1] == moved and rows["Appointment/v1"][0] == "cancelled"

        wait_for(current)
    finally:
        scheduler.shutdown(wait=True)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(status=503), "source.http"),
        (Fault(status=401), "source.auth"),
        (Fault(status=200, body=b"<!doctype html>", content_type="text/html"), "source.not_fhir"),
    ],
)
def test_a_failed_fhir_read_keeps_the_stored_visits_and_warns(app, session, now, server, fault,
                                                             code):  # fmt: skip
    from calendar_app.models import Source, SourceState
    from calendar_app.services import sync
    from calendar_app.services.source_health import source_warnings
    from tests.support.helpers import add_person

    person = add_person(session, now)
    visits(server, datetime(2026, 12, 1, 9, tzinfo=UTC), 3)
    source_id = add_fhir_source(app, session, person.id, server, now)
    factory = app.extensions["session_factory"]
    policy = sync.SyncPolicy.from_config(app.config)
    sync.sync_due(factory, policy, worker="t", clock=lambda: now)
    before = stored(session, person.id)
    assert len(before) == 3

    server.faults["/fhir/Appointment"] = fault
    later = now + timedelta(hours=1)
    [failed] = sync.sync_due(factory, policy, worker="t", clock=lambda: later)
    assert failed.error_code == code
    assert stored(session, person.id) == before, "nothing stored changed"
    source = session.get(Source, source_id)
    assert (source.state, source.last_success_utc) == (SourceState.STALE, now)
    [warning] = source_warnings(session, person.id, include_personal=False)
    session.commit()
    assert warning.unit == "Psykiatrimottagningen Växjö"
