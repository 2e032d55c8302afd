"""A FHIR R4 server on 127.0.0.1 for the FHIR adapter's tests: HL7's example resources (or
any a test adds), a patient found by personnummer only through a POSTed form, appointments
searched by patient and date with paging and ``_include``, files such as photos, and
failures injected by path prefix. Every request is recorded."""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

from tests.conftest import CORPUS
from tests.support.feeds import serving

CORPUS_R4: Path = CORPUS / "fhir" / "hl7-r4-examples"
CORPUS_STU3: Path = CORPUS / "fhir" / "argonaut-scheduling-stu3"
SWEDISH_PNR_SYSTEM = "urn:oid:1.2.752.129.2.1.3.1"
FHIR_PATH = "/fhir"  # where the FHIR base is on the server, whatever ``base`` is set to
MAX_COUNT = 50
FORM = "application/x-www-form-urlencoded"
EXAMPLE_TYPES = frozenset(
    {"Appointment", "Patient", "Practitioner", "Location", "PractitionerRole",
     "HealthcareService", "Schedule", "Slot"}
)  # fmt: skip
# _include values honoured, and the actor type each adds (None: any).
INCLUDES: dict[str, str | None] = {
    "Appointment:actor": None,
    "Appointment:patient": "Patient",
    "Appointment:practitioner": "Practitioner",
    "Appointment:location": "Location",
}
Params = list[tuple[str, str]]


def corpus_resource(name: str) -> dict:
    """A fresh copy of one of HL7's R4 example resources, e.g. ``"Appointment-example"``."""
    with (CORPUS_R4 / f"{name}.json").open(encoding="utf-8") as file:
        return json.load(file)


@dataclass
class Fault:
    """An injected answer for every request whose path starts with a prefix."""

    status: int = 500
    body: bytes = b""
    content_type: str = "application/fhir+json"
    delay: float = 0.0  # seconds slept before answering
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (``query_string`` still URL-encoded)."""

    method: str
    path: str
    query_string: str
    body: bytes
    headers: dict[str, str]


class _Refused(Exception):
    """A request answered with an OperationOutcome."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


class FhirServer:
    """Answer FHIR R4 reads and searches from the dicts a test fills; see the module doc."""

    def __init__(self) -> None:
        self.origin = ""  # http://127.0.0.1:PORT, set when the server starts
        self.base = ""  # origin + FHIR_PATH
        self.fhir_version = "4.0.1"  # empty: the CapabilityStatement names none
        self.content_type = "application/fhir+json; fhirVersion=4.0"
        self.page_size = 2
        self.include_supported = True
        self.patients: dict[str, dict] = {}
        self.appointments: dict[str, dict] = {}
        self.resources: dict[str, dict] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[Seen] = []
        self.searchset_override: dict | None = None
        self.lock = threading.Lock()
        self._searches: dict[str, Params] = {}  # _getpages token -> the search's parameters

    # --- what a test sets up -------------------------------------------------------------

    def add_patient(self, resource: dict, personnummer: str) -> str:
        """Store a copy of the patient with the personnummer as an extra identifier."""
        patient = copy.deepcopy(resource)
        patient["identifier"] = [
            *patient.get("identifier", []),
            {"system": SWEDISH_PNR_SYSTEM, "value": personnummer},
        ]
        self.patients[patient["id"]] = patient
        return patient["id"]

    def add(self, resource: dict) -> None:
        """Store the resource itself (not a copy) where reads and searches find it."""
        kind, ident = resource["resourceType"], resource["id"]
        if kind == "Appointment":
            self.appointments[ident] = resource
        elif kind == "Patient":
            self.patients[ident] = resource
        else:
            self.resources[f"{kind}/{ident}"] = resource

    def load_r4_examples(self) -> None:
        """Add every R4 example file of a type a scheduling client may read."""
        for path in sorted(CORPUS_R4.glob("*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") in EXAMPLE_TYPES:
                self.add(resource)

    def url(self, path: str) -> str:
        """The absolute address of a path on this server, e.g. of one of ``files``."""
        return self.origin + path

    # --- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        seen = Seen(
            method=request.method,
            path=request.path,
            query_string=request.query_string.decode("latin-1"),
            body=request.get_data(),
            headers=dict(request.headers),
        )
        with self.lock:
            self.requests.append(seen)
        return self._answer(request, seen)(environ, start_response)

    def _answer(self, request: Request, seen: Seen) -> Response:
        faults = dict(self.faults)
        prefixes = [prefix for prefix in faults if seen.path.startswith(prefix)]
        if prefixes:
            fault = faults[max(prefixes, key=len)]
            time.sleep(fault.delay)
            return Response(
                fault.body, fault.status, headers=fault.headers, content_type=fault.content_type
            )
        if seen.method in ("GET", "HEAD") and seen.path in self.files:
            data, content_type = self.files[seen.path]
            return Response(data, content_type=content_type)
        if not seen.path.startswith(FHIR_PATH + "/"):
            return Response(b"not found", 404, content_type="text/plain")
        try:
            return self._json(self._fhir(request, seen))
        except _Refused as refused:
            return self._json(_outcome(refused.code, refused.text), refused.status)

    def _json(self, data: dict, status: int = 200) -> Response:
        text = json.dumps(data, ensure_ascii=False)
        return Response(text, status, content_type=self.content_type)

    def _fhir(self, request: Request, seen: Seen) -> dict:
        parts = seen.path[len(FHIR_PATH) + 1 :].split("/")
        query = parse_qsl(seen.query_string, keep_blank_values=True)
        route = (seen.method, *parts)
        if route == ("GET", "metadata"):
            return self._capabilities()
        if route == ("POST", "Patient", "_search"):
            if _values(query, "identifier"):
                raise _Refused(400, "security", "a patient's identifier may not be in a URL")
            return self._patient_search(_form(request, seen))
        if route == ("GET", "Patient"):
            if _values(query, "identifier"):
                raise _Refused(400, "security", "search patients by identifier with POST only")
            return self._patient_search(query)
        if route == ("GET", "Appointment"):
            return self._appointment_search(query)
        if route == ("POST", "Appointment", "_search"):
            return self._appointment_search(query + _form(request, seen))
        if seen.method == "GET" and len(parts) == 2 and all(parts):
            found = self._lookup("/".join(parts))
            if found is None:
                raise _Refused(404, "not-found", f"{parts[0]}/{parts[1]} is not known here")
            return found
        if seen.method not in ("GET", "HEAD"):
            raise _Refused(405, "not-supported", f"{seen.method} is not supported here")
        raise _Refused(404, "not-found", "no such resource type or operation")

    # --- answers -------------------------------------------------------------------------

    def _capabilities(self) -> dict:
        appointment: dict[str, Any] = {
            "type": "Appointment",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "patient", "type": "reference"},
                {"name": "date", "type": "date"},
            ],
        }
        if self.include_supported:
            appointment["searchInclude"] = list(INCLUDES)
        patient = {
            "type": "Patient",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "identifier", "type": "token"}],
        }
        readable = [
            {"type": kind, "interaction": [{"code": "read"}]}
            for kind in sorted(EXAMPLE_TYPES - {"Appointment", "Patient"})
        ]
        statement: dict[str, Any] = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2024-01-01",
            "kind": "instance",
            "implementation": {"description": "fake FHIR server of the tests", "url": self.base},
            "fhirVersion": self.fhir_version,
            "format": ["json"],
            "rest": [{"mode": "server", "resource": [appointment, patient, *readable]}],
        }
        if not self.fhir_version:
            del statement["fhirVersion"]
        return statement

    def _patient_search(self, params: Params) -> dict:
        wanted = _values(params, "identifier")
        found = [
            patient
            for patient in list(self.patients.values())
            if all(_has_identifier(patient, token) for token in wanted)
        ]
        found.sort(key=lambda patient: str(patient.get("id")))
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": [{"relation": "self", "url": f"{self.base}/Patient/_search"}],
            "entry": [self._entry(f"Patient/{p.get('id')}", p, "match") for p in found],
        }

    def _appointment_search(self, params: Params) -> dict:
        if self.searchset_override is not None:
            return copy.deepcopy(self.searchset_override)
        page = _whole(_first(params, "_page"), "_page", default=1, least=1)
        token = _first(params, "_getpages")
        if token:
            with self.lock:
                stored = self._searches.get(token)
            if stored is None:
                raise _Refused(410, "not-found", "no such search, or it has expired")
            params = stored
        else:
            token = secrets.token_hex(6)
            params = [(name, value) for name, value in params if name != "_page"]
            with self.lock:
                self._searches[token] = params
        patient = self._patient_reference(params)
        filters = [_date_filter(value) for value in _values(params, "date")]
        count = min(_whole(_first(params, "_count"), "_count", self.page_size, 0), MAX_COUNT)
        kinds = {INCLUDES[v] for v in _values(params, "_include") if v in INCLUDES}

        matches = sorted(
            (
                resource
                for resource in list(self.appointments.values())
                if _is_for(resource, patient, self.base) and _in_dates(resource, filters)
            ),
            key=_by_start,
        )
        shown = matches[(page - 1) * count : page * count]
        entries = [self._entry(f"Appointment/{a.get('id')}", a, "match") for a in shown]
        if self.include_supported and kinds:
            entries += self._included(shown, kinds)
        links = [{"relation": "self", "url": self._page_url(token, page)}]
        if count and page * count < len(matches):
            links.append({"relation": "next", "url": self._page_url(token, page + 1)})
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }

    def _page_url(self, token: str, page: int) -> str:
        # Opaque, so a patient id searched for by POST never appears in a URL.
        return f"{self.base}/Appointment?_getpages={token}&_page={page}"

    def _patient_reference(self, params: Params) -> str:
        values = _values(params, "patient")
        if len(values) != 1 or not values[0]:
            raise _Refused(400, "required", "an appointment search needs one patient")
        reference = values[0].removeprefix(self.base + "/")
        if "/" not in reference:
            return reference
        kind, _, ident = reference.partition("/")
        if kind != "Patient" or not ident or "/" in ident:
            raise _Refused(400, "invalid", "patient must be Patient/[id] or [id]")
        return ident

    def _included(self, appointments: list[dict], kinds: set[str | None]) -> list[dict]:
        entries: dict[str, dict] = {}
        for appointment in appointments:
            for participant in appointment.get("participant", []):
                reference = (participant.get("actor") or {}).get("reference")
                if not isinstance(reference, str):
                    continue
                key = reference.removeprefix(self.base + "/")
                if None not in kinds and key.partition("/")[0] not in kinds:
                    continue
                found = self._lookup(key)
                if found is not None and key not in entries:
                    entries[key] = self._entry(key, found, "include")
        return list(entries.values())

    def _lookup(self, key: str) -> dict | None:
        kind, _, ident = key.partition("/")
        if kind == "Patient":
            return self.patients.get(ident)
        if kind == "Appointment":
            return self.appointments.get(ident)
        return self.resources.get(key)

    def _entry(self, key: str, resource: dict, mode: str) -> dict:
        return {"fullUrl": f"{self.base}/{key}", "resource": resource, "search": {"mode": mode}}


@contextmanager
def fhir_server() -> Iterator[FhirServer]:
    """A running, empty FhirServer; stopped on leaving."""
    fhir = FhirServer()
    with serving(fhir) as origin:
        fhir.origin = origin
        fhir.base = origin + FHIR_PATH
        yield fhir


# --- search parameters ----------------------------------------------------------------------


def _outcome(code: str, text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _form(request: Request, seen: Seen) -> Params:
    if request.mimetype != FORM:
        raise _Refused(415, "not-supported", f"a search by POST must be sent as {FORM}")
    return parse_qsl(seen.body.decode("utf-8"), keep_blank_values=True)


def _values(params: Params, name: str) -> list[str]:
    return [value for key, value in params if key == name]


def _first(params: Params, name: str) -> str | None:
    values = _values(params, name)
    return values[0] if values else None


def _whole(text: str | None, name: str, default: int, least: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or int(text) < least:
        raise _Refused(400, "invalid", f"{name} must be a whole number of at least {least}")
    return int(text)


def _has_identifier(resource: dict, token: str) -> bool:
    """FHIR token search: ``system|value``, ``value`` (any system), ``|value``, ``system|``."""
    system, bar, value = token.partition("|")
    if not bar:
        system, value = "", token
    for identifier in resource.get("identifier", []):
        if bar and (identifier.get("system") or "") != system:
            continue
        if not value or identifier.get("value") == value:
            return True
    return False


def _is_for(appointment: dict, patient: str, base: str) -> bool:
    wanted = {f"Patient/{patient}", f"{base}/Patient/{patient}"}
    return any(
        (participant.get("actor") or {}).get("reference") in wanted
        for participant in appointment.get("participant", [])
    )


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _by_start(appointment: dict) -> tuple[bool, datetime, str]:
    start = _instant(appointment.get("start"))
    return (start is None, start or datetime.min.replace(tzinfo=UTC), str(appointment.get("id")))


def _in_dates(appointment: dict, filters: list[Callable[[datetime], bool]]) -> bool:
    if not filters:
        return True
    start = _instant(appointment.get("start"))
    return start is not None and all(test(start) for test in filters)


def _date_filter(text: str) -> Callable[[datetime], bool]:
    """``date=[prefix]value``; the value is a range: a year, month or day, or one instant."""
    prefix, value = (text[:2], text[2:]) if text[:2].isalpha() else ("eq", text)
    low, high = _date_range(value)
    tests: dict[str, Callable[[datetime], bool]] = {
        "eq": lambda t: low <= t < high,
        "ne": lambda t: not low <= t < high,
        "ge": lambda t: t >= low,
        "gt": lambda t: t >= high,
        "le": lambda t: t < high,
        "lt": lambda t: t < low,
    }
    if prefix not in tests:
        raise _Refused(400, "not-supported", f"date prefix {prefix!r} is not supported")
    return tests[prefix]


def _date_range(value: str) -> tuple[datetime, datetime]:
    try:
        if re.fullmatch(r"\d{4}", value):
            year = int(value)
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}", value):
            year, month = map(int, value.split("-"))
            first = datetime(year, month, 1, tzinfo=UTC)
            return first, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day, day + timedelta(days=1)
        if "T" in value:
            moment = _instant(value)
            if moment is not None:
                return moment, moment + timedelta(microseconds=1)
    except ValueError:
        pass
    raise _Refused(400, "invalid", f"{value!r} is not a FHIR date or dateTime")
