"""The fake FHIR server answers as the FHIR adapter's tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.fhir_server import (
    SWEDISH_PNR_SYSTEM,
    Fault,
    FhirServer,
    corpus_resource,
    fhir_server,
)
from tests.support.helpers import PNR_ALVA

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def server() -> Iterator[FhirServer]:
    with fhir_server() as running:
        running.load_r4_examples()
        running.add_patient(corpus_resource("Patient-example"), PNR_ALVA)
        yield running


def visit(ident: str, start: str | None) -> dict:
    resource = {
        "resourceType": "Appointment",
        "id": ident,
        "status": "booked",
        "participant": [{"actor": {"reference": "Patient/example"}, "status": "accepted"}],
    }
    if start:
        resource["start"] = start
    return resource


def search(server: FhirServer, *params: tuple[str, str]) -> dict:
    answer = requests.get(f"{server.base}/Appointment", params=params, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def match_ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_metadata_names_the_fhir_version_in_an_fhir_json_answer(server):
    answer = requests.get(f"{server.base}/metadata", timeout=5)
    assert answer.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    assert answer.json()["fhirVersion"] == "4.0.1"
    server.fhir_version = "3.0.1"
    assert requests.get(f"{server.base}/metadata", timeout=5).json()["fhirVersion"] == "3.0.1"


def test_a_patient_is_found_by_personnummer_only_by_post(server):
    for identifier in (f"{SWEDISH_PNR_SYSTEM}|{PNR_ALVA}", PNR_ALVA):
        answer = requests.post(
            f"{server.base}/Patient/_search", data={"identifier": identifier}, timeout=5
        )
        bundle = answer.json()
        assert (bundle["type"], bundle["total"]) == ("searchset", 1)
        assert bundle["entry"][0]["resource"]["id"] == "example"
    other = requests.post(
        f"{server.base}/Patient/_search", data={"identifier": "urn:other|" + PNR_ALVA}, timeout=5
    )
    assert other.json()["total"] == 0

    refused = requests.get(f"{server.base}/Patient", params={"identifier": PNR_ALVA}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert server.requests[-1].method == "GET" and PNR_ALVA in server.requests[-1].query_string


def test_next_links_lead_through_three_pages_to_every_appointment_once(server):
    for n in range(4):
        server.add(visit(f"p{n}", f"2013-03-0{n + 1}T09:00:00Z"))
    answer = requests.post(
        f"{server.base}/Appointment/_search",
        data={"patient": "Patient/example", "date": "ge2013-01-01"},
        timeout=5,
    )
    bundle, seen, pages = answer.json(), [], 1
    while True:
        assert bundle["total"] == 6
        seen += match_ids(bundle)
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        assert following[0].startswith(server.base + "/Appointment?")
        assert "example" not in following[0]  # what a POST searched for stays out of URLs
        bundle = requests.get(following[0], timeout=5).json()
        pages += 1
    assert pages == 3
    assert seen == ["p0", "p1", "p2", "p3", "2docs", "example"]  # by start


def test_dates_filter_on_start_and_a_missing_start_matches_no_filter(server):
    patient = ("patient", "example")
    assert set(match_ids(search(server, patient, ("_count", "9")))) == {
        "example", "2docs", "examplereq"
    }  # fmt: skip
    assert match_ids(search(server, patient, ("date", "ge2013-12-10"))) == ["example"]
    assert match_ids(search(server, patient, ("date", "lt2013-12-10T09:00:00Z"))) == ["2docs"]
    assert match_ids(search(server, patient, ("date", "gt2013-12-09"), ("date", "le2013-12"))) == [
        "example"
    ]
    assert match_ids(search(server, patient, ("date", "2013-12-09"))) == ["2docs"]
    bad = requests.get(f"{server.base}/Appointment", params={"date": "ge2013"}, timeout=5)
    assert bad.status_code == 400  # no patient


def test_include_adds_each_referenced_actor_once_per_page(server):
    bundle = search(server, ("patient", "Patient/example"), ("_include", "Appointment:actor"))
    included = [e["fullUrl"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert sorted(included) == [
        f"{server.base}/{key}"
        for key in ("Location/1", "Patient/example", "Practitioner/example", "Practitioner/f202")
    ]
    server.include_supported = False
    bundle = search(server, ("patient", "Patient/example"), ("_include", "Appointment:actor"))
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])


def test_resources_and_files_are_read_and_the_rest_is_not_found(server):
    server.files["/photos/a.png"] = (b"\x89PNG", "image/png")
    photo = requests.get(server.url("/photos/a.png"), timeout=5)
    assert (photo.content, photo.headers["Content-Type"]) == (b"\x89PNG", "image/png")
    assert requests.get(f"{server.base}/Practitioner/f202", timeout=5).json()["id"] == "f202"
    missing = requests.get(f"{server.base}/Practitioner/nobody", timeout=5)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_the_longest_matching_fault_answers_after_its_delay(server):
    server.faults["/fhir/"] = Fault(status=500)
    server.faults["/fhir/metadata"] = Fault(
        status=302, headers={"Location": "http://10.0.0.1/x"}, delay=0.05
    )
    moved = requests.get(f"{server.base}/metadata", allow_redirects=False, timeout=5)
    assert (moved.status_code, moved.headers["Location"]) == (302, "http://10.0.0.1/x")
    assert moved.elapsed.total_seconds() >= 0.05
    failed = requests.post(f"{server.base}/Patient/_search", headers=FORM, timeout=5)
    assert failed.status_code == 500
    assert [seen.path for seen in server.requests] == ["/fhir/metadata", "/fhir/Patient/_search"]
