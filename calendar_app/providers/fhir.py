"""The FHIR R4 adapter: a person's appointments in a region's FHIR server.

One read, all of it under one deadline:

1. ``GET [base]/metadata``: the CapabilityStatement must declare FHIR 4.0 (R4). STU3,
   DSTU2, R5 or no version at all is refused with ``fhir.version``, as is an answer whose
   Content-Type names another version, or appointments coded with STU3's code systems.
2. ``POST [base]/Patient/_search`` with ``identifier=urn:oid:1.2.752.129.2.1.3.1|<pnr>``
   in the form body, so the personnummer is in no URL (nor any access log of a URL).
   Exactly one patient must match.
3. ``GET [base]/Appointment?patient=…&date=ge…&date=lt…&_include=Appointment:actor``,
   following the Bundle's ``next`` links (on the same server only, at most MAX_PAGES).
4. Practitioners and locations the bundle did not include are read one by one.
5. ``Practitioner.photo``, inline or at a URL fetched here under the same address policy,
   is re-encoded by :mod:`calendar_app.domain.photos`; a picture that cannot be used is
   left out and never fails the read.

The listing is complete: an appointment no longer listed is cancelled, as in CalDAV.
FHIR has no cheap "unchanged" answer, so the cursor keeps a digest of what the last read
delivered and an identical read is reported as unchanged.

The mapping is written by hand: it reads a dozen elements of four resource types, and
the FHIR model library (fhir.resources) ships R5, R4B, STU3 and DSTU2 models but not R4;
it would also accept STU3 appointments, which fit R4's shape, so it would not save the
version check. The server's answers may echo the personnummer (an OperationOutcome's
diagnostics), so no message made here contains anything the server said.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from calendar_app.domain.bookings import IncomingBooking, ReadResult, SkippedEvent, read_to_json
from calendar_app.domain.modes import mode_from_words
from calendar_app.domain.photos import MAX_INPUT_BYTES, PhotoData, PhotoError, reencode
from calendar_app.providers import (
    AdapterRead,
    Prepared,
    ProviderError,
    SourceConfig,
    Window,
    netguard,
)
from calendar_app.providers.ics_url import (
    DEADLINE_TIMEOUTS,
    Auth,
    download,
    http_url,
    prepared_address,
)
from calendar_app.providers.netguard import PUBLIC_ONLY, AddressPolicy

log = logging.getLogger(__name__)

ADAPTER = "fhir"
TIMEOUT_SECONDS = 20.0
PERSONNUMMER_SYSTEM = "urn:oid:1.2.752.129.2.1.3.1"
R4 = "4.0"
PAGE_SIZE = 100
MAX_PAGES = 50  # a read is complete or fails: 5,000 appointments in the window at most
MAX_LOOKUPS = 50  # referenced resources read one by one per read
MAX_PHOTOS = 20
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
_ACCEPT = "application/fhir+json; fhirVersion=4.0, application/json;q=0.9"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FIRST_YEAR, _LAST_YEAR = 1900, 2199

# R4's Appointment.status as our booking status. entered-in-error is not here: such an
# appointment never existed, so it is left out of the read (a stored one is cancelled).
STATUS = {
    "proposed": "tentative",
    "pending": "tentative",
    "waitlist": "tentative",
    "booked": "confirmed",
    "arrived": "confirmed",
    "checked-in": "confirmed",
    "fulfilled": "confirmed",
    "noshow": "confirmed",  # the time was booked; the person did not come
    "cancelled": "cancelled",
}

# Codes that say how a visit happens, where a system codes it.
_PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
_SNOMED = "http://snomed.info/sct"
_MODE_CODES = {
    (_PARTICIPATION_MODE, "PHONE"): "phone",
    (_PARTICIPATION_MODE, "VIDEOCONF"): "video",
    (_PARTICIPATION_MODE, "FACE"): "in_person",
    (_SNOMED, "185317003"): "phone",  # telephone encounter
    (_SNOMED, "386472008"): "phone",  # telephone consultation
    (_SNOMED, "448337001"): "video",  # telemedicine consultation with patient
}
_TRANSLATOR = ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "TRANS")
# Code systems under these addresses are STU3's (and DSTU2's); R4 moved them to
# terminology.hl7.org, so an appointment coded with them was written against STU3.
_OLD_CODE_SYSTEMS = ("http://hl7.org/fhir/v2/", "http://hl7.org/fhir/v3/")


class _Damaged(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BearerToken(requests.auth.AuthBase):
    """``Authorization: Bearer …`` for servers that take a token instead of a password."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def base_url(url: str) -> str:
    """The FHIR base as entered, without a trailing slash; http(s) only."""
    url = url.strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ProviderError("source.url", "the FHIR address must be an http(s) URL")
    return http_url(url).rstrip("/")


def read_appointments(
    url: str,
    window: Window,
    cursor: Mapping[str, str],
    *,
    personnummer: str,
    auth: Auth | None = None,
    max_bytes: int,
    timeout: float = TIMEOUT_SECONDS,
    policy: AddressPolicy = PUBLIC_ONLY,
) -> AdapterRead:
    """Read the person's appointments in ``window`` from the FHIR server at ``url``."""
    base = base_url(url)
    if not re.fullmatch(r"\d{12}", personnummer):
        raise ProviderError("fhir.patient_not_found", "the person has no personnummer to search")
    session = netguard.guarded_session(policy)
    try:
        with netguard.time_limit(timeout * DEADLINE_TIMEOUTS) as clock:
            server = _Server(base, session, auth, policy, timeout, clock, max_bytes)
            _check_version(server.get_json(f"{base}/metadata"))
            patient = _find_patient(server, personnummer)
            appointments, found = _search_appointments(server, patient, window, personnummer)
            resolver = _Resolver(server, found)
            photos_known = _photo_cursor(cursor)
            read, photos_used = _read_result(appointments, resolver, photos_known)
    finally:
        session.close()
    # The bookings name their photos by digest, so a new picture is a new read too.
    digest = hashlib.sha256(read_to_json(read).encode()).hexdigest()[:32]
    new_cursor = {"read": digest, "photos": json.dumps(photos_used, sort_keys=True)}
    if cursor.get("read") == digest:
        return AdapterRead(None, new_cursor)
    return AdapterRead(read, new_cursor)


@dataclass
class _Server:
    """JSON requests to one FHIR server, each checked, capped and under the deadline."""

    base: str
    session: requests.Session
    auth: Auth | None
    policy: AddressPolicy
    timeout: float
    clock: netguard.Deadline
    max_bytes: int

    def get_json(self, url: str) -> dict[str, Any]:
        return self._json(url, None)

    def post_form(self, url: str, form: list[tuple[str, str]]) -> dict[str, Any]:
        return self._json(url, form)

    def get_bytes(self, url: str, max_bytes: int) -> bytes:
        """Another address's bytes (a photo); credentials go only to the FHIR server."""
        response, body = download(
            self.session,
            url,
            {"Accept": "image/*"},
            auth=self.auth if self.same_server(url) else None,
            policy=self.policy,
            timeout=self.timeout,
            clock=self.clock,
            max_bytes=max_bytes,
            too_large="the picture",
        )
        return body or b""

    def same_server(self, url: str) -> bool:
        mine, other = urlsplit(self.base), urlsplit(url)
        return (mine.scheme, mine.netloc) == (other.scheme, other.netloc)

    def _json(self, url: str, form: list[tuple[str, str]] | None) -> dict[str, Any]:
        headers = {"Accept": _ACCEPT}
        response, body = download(
            self.session,
            url,
            headers,
            auth=self.auth,
            policy=self.policy,
            timeout=self.timeout,
            clock=self.clock,
            max_bytes=self.max_bytes,
            form=form,
            too_large="an answer of the server",
        )
        kind, _, parameters = response.headers.get("content-type", "").partition(";")
        if kind.strip().lower() not in _JSON_TYPES:
            raise ProviderError("source.not_fhir", "the server's answer is not FHIR JSON")
        version = re.search(r"fhirVersion\s*=\s*\"?([\d.]+)", parameters)
        if version and not _is_r4(version.group(1)):
            raise _version_error(version.group(1))
        try:
            data = json.loads(body or b"")
        except ValueError:
            raise ProviderError(
                "source.protocol", "the server's answer is not valid JSON"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise ProviderError("source.protocol", "the server's answer is not a FHIR resource")
        return data


def _is_r4(version: str) -> bool:
    return version == R4 or version.startswith(R4 + ".")


def _version_error(version: str) -> ProviderError:
    names = {"3.0": "STU3", "1.0": "DSTU2", "4.3": "R4B", "5.0": "R5"}
    name = names.get(".".join(version.split(".")[:2]), version)
    return ProviderError(
        "fhir.version", f"the server speaks FHIR {name} ({version}); only R4 (4.0) can be read"
    )


def _check_version(statement: Mapping[str, Any]) -> None:
    if statement.get("resourceType") == "Conformance":  # DSTU2's name for it
        raise _version_error(str(statement.get("fhirVersion") or "1.0"))
    if statement.get("resourceType") != "CapabilityStatement":
        raise ProviderError("source.not_fhir", "the address has no FHIR CapabilityStatement")
    version = statement.get("fhirVersion")
    if not isinstance(version, str) or not version:
        raise ProviderError("fhir.version", "the server does not say which FHIR version it speaks")
    if not _is_r4(version):
        raise _version_error(version)


def _find_patient(server: _Server, personnummer: str) -> str:
    bundle = server.post_form(
        f"{server.base}/Patient/_search",
        [("identifier", f"{PERSONNUMMER_SYSTEM}|{personnummer}")],
    )
    ids = {
        str(resource["id"])
        for resource, mode in _entries(bundle)
        if resource.get("resourceType") == "Patient"
        and mode in ("match", None)
        and isinstance(resource.get("id"), str)
        and _ID.fullmatch(resource["id"])
        and _has_identifier(resource, personnummer)
    }
    if not ids:
        raise ProviderError("fhir.patient_not_found", "the server has no patient with the number")
    if len(ids) > 1:
        raise ProviderError("fhir.patient_ambiguous", "the server has several such patients")
    return ids.pop()


def _has_identifier(patient: Mapping[str, Any], personnummer: str) -> bool:
    # The server searched; this check keeps a lax server's other patients out.
    return any(
        isinstance(i, dict)
        and i.get("system") == PERSONNUMMER_SYSTEM
        and str(i.get("value", "")).replace("-", "") == personnummer
        for i in _list(patient.get("identifier"))
    )


def _search_appointments(
    server: _Server, patient: str, window: Window, personnummer: str
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every appointment in the window (by id) and the resources included beside them."""
    params = [
        ("patient", f"Patient/{patient}"),
        ("date", f"ge{_instant_text(window.start)}"),
        ("date", f"lt{_instant_text(window.end)}"),
        ("_count", str(PAGE_SIZE)),
        ("_include", "Appointment:actor"),
    ]
    first = f"{server.base}/Appointment"
    if personnummer in patient or personnummer[2:] in patient:
        # A server whose patient id is the personnummer gets it in a form, not a URL.
        page = server.post_form(f"{first}/_search", params)
    else:
        page = server.get_json(f"{first}?{urlencode(params)}")
    appointments: dict[str, dict[str, Any]] = {}
    included: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for number in range(1, MAX_PAGES + 1):
        if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
            raise ProviderError("source.protocol", "the search did not answer a search bundle")
        for resource, mode in _entries(page):
            kind = resource.get("resourceType")
            if kind == "Appointment" and mode in ("match", None):
                ident = resource.get("id")
                if isinstance(ident, str) and ident not in appointments:
                    appointments[ident] = resource
                elif not isinstance(ident, str):
                    appointments[f"#{len(appointments)}"] = resource
            elif isinstance(kind, str) and isinstance(resource.get("id"), str):
                included.setdefault(f"{kind}/{resource['id']}", resource)
        following = _next_link(page)
        if following is None:
            return list(appointments.values()), included
        following = urljoin(server.base + "/", following)
        if not server.same_server(following):
            raise ProviderError("fhir.paging", "a next page is on another server")
        if following in seen:
            raise ProviderError("fhir.paging", "the search's pages go round in a circle")
        seen.add(following)
        if number == MAX_PAGES:
            break
        page = server.get_json(following)
    raise ProviderError("fhir.too_many", f"more than {MAX_PAGES} pages of appointments")


def _instant_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in _list(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def _entries(bundle: Mapping[str, Any]) -> Iterable[tuple[dict[str, Any], str | None]]:
    """(resource, search mode) of each entry that holds a resource."""
    if bundle.get("resourceType") != "Bundle":
        raise ProviderError("source.protocol", "the server did not answer a bundle")
    for entry in _list(bundle.get("entry")):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, dict) else None
        yield entry["resource"], mode if isinstance(mode, str) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class _Resolver:
    """Practitioners and locations by reference: included, contained or read one by one."""

    def __init__(self, server: _Server, included: dict[str, dict[str, Any]]) -> None:
        self.server = server
        self.known: dict[str, dict[str, Any] | None] = dict(included)
        self.lookups = 0

    def resolve(
        self, reference: object, appointment: Mapping[str, Any], kinds: tuple[str, ...]
    ) -> dict[str, Any] | None:
        if not isinstance(reference, str) or not reference:
            return None
        if reference.startswith("#"):
            for item in _list(appointment.get("contained")):
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item if item.get("resourceType") in kinds else None
            return None
        if reference.startswith(("http://", "https://")):
            if not reference.startswith(self.server.base + "/"):
                return None  # another server's resource: its display is used
            reference = reference[len(self.server.base) + 1 :]
        parts = reference.split("/")
        if len(parts) < 2 or parts[0] not in kinds or not _ID.fullmatch(parts[1]):
            return None
        key = f"{parts[0]}/{parts[1]}"  # a version (…/_history/n) reads the current one
        if key not in self.known:
            self.known[key] = self._read(key)
        return self.known[key]

    def _read(self, key: str) -> dict[str, Any] | None:
        if self.lookups >= MAX_LOOKUPS:
            return None
        self.lookups += 1
        try:
            resource = self.server.get_json(f"{self.server.base}/{key}")
        except ProviderError as exc:
            if exc.code == "source.http":  # gone or never there: its display is used
                return None
            raise
        return resource if resource.get("resourceType") == key.split("/")[0] else None


@dataclass
class _Photos:
    """Pictures of practitioners for one read, fetched once each."""

    resolver: _Resolver
    known: Mapping[str, str]  # what a picture's source was re-encoded to in an earlier read
    used: dict[str, str] = field(default_factory=dict)
    new: dict[str, PhotoData] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def of(self, practitioner: Mapping[str, Any]) -> str | None:
        for attachment in _list(practitioner.get("photo")):
            if isinstance(attachment, dict):
                digest = self._digest(attachment)
                if digest:
                    return digest
        return None

    def _digest(self, attachment: Mapping[str, Any]) -> str | None:
        data, url = attachment.get("data"), attachment.get("url")
        if isinstance(data, str) and data:
            key = "data:" + hashlib.sha256(data.encode()).hexdigest()[:32]
        elif isinstance(url, str) and url:
            url = urljoin(self.resolver.server.base + "/", url)
            key = "url:" + hashlib.sha256(url.encode()).hexdigest()[:32]
        else:
            return None
        if key in self.used:
            return self.used[key]
        if key in self.known:
            self.used[key] = self.known[key]
            return self.known[key]
        if key in self.failed or len(self.used) + len(self.failed) >= MAX_PHOTOS:
            return None
        try:
            raw = _decoded(data) if key.startswith("data:") else self._fetch(str(url))
            photo = reencode(raw)
        except (PhotoError, ProviderError) as exc:
            log.info("practitioner photo left out: %s", exc.code)  # never the address
            self.failed.add(key)
            return None
        self.used[key] = photo.digest
        self.new[photo.digest] = photo
        return photo.digest

    def _fetch(self, url: str) -> bytes:
        return self.resolver.server.get_bytes(url, MAX_INPUT_BYTES)


def _decoded(data: object) -> bytes:
    if len(str(data)) > MAX_INPUT_BYTES * 4 // 3 + 4:
        raise PhotoError("photo.too_large", "the picture is larger than 5 MB")
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise PhotoError("photo.not_image", "the picture's data is not base64") from None


def _photo_cursor(cursor: Mapping[str, str]) -> dict[str, str]:
    try:
        known = json.loads(cursor.get("photos", "{}"))
    except ValueError:
        return {}
    if not isinstance(known, dict):
        return {}
    return {str(k): str(v) for k, v in known.items() if re.fullmatch(r"[0-9a-f]{64}", str(v))}


def _read_result(
    appointments: list[dict[str, Any]], resolver: _Resolver, photos_known: Mapping[str, str]
) -> tuple[ReadResult, dict[str, str]]:
    photos = _Photos(resolver, photos_known)
    bookings: list[IncomingBooking] = []
    skipped: list[SkippedEvent] = []
    for appointment in appointments:
        ident = appointment.get("id")
        uid = f"Appointment/{ident}" if isinstance(ident, str) and _ID.fullmatch(ident) else None
        try:
            if uid is None:
                raise _Damaged("event.damaged", "the appointment has no valid id")
            booking = _booking(uid, appointment, resolver, photos)
        except _Damaged as exc:
            skipped.append(SkippedEvent(uid, exc.code, exc.reason))
            continue
        if booking is not None:
            bookings.append(booking)
    used_digests = {b.practitioner_photo for b in bookings}
    read = ReadResult(
        bookings=tuple(bookings),
        skipped=tuple(skipped),
        photos=tuple(p for d, p in sorted(photos.new.items()) if d in used_digests),
    )
    return read, photos.used


def _booking(
    uid: str, appointment: Mapping[str, Any], resolver: _Resolver, photos: _Photos
) -> IncomingBooking | None:
    """The appointment as a booking; None for one that is not a visit in time."""
    _refuse_stu3_codes(appointment)
    status = appointment.get("status")
    if status == "entered-in-error":
        return None
    ours = STATUS.get(str(status))
    if ours is None:
        raise _Damaged("event.damaged", "the appointment's status is unknown")
    if not appointment.get("start"):
        if ours in ("tentative", "cancelled"):
            return None  # a request or a withdrawn one, with no time yet: nothing to show
        raise _Damaged("event.no_start", "a booked appointment has no start")
    start = _instant(appointment.get("start"))
    if appointment.get("end"):
        end = _instant(appointment.get("end"))
    else:
        minutes = appointment.get("minutesDuration")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 < minutes <= 1440:
            raise _Damaged("event.damaged", "the appointment has no end")
        end = start + timedelta(minutes=minutes)
    if end < start:
        raise _Damaged("event.end_before_start", "the appointment ends before it starts")
    for moment in (start, end):
        if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
            raise _Damaged("event.date_out_of_range", "the appointment lies outside 1900–2199")
    people = _participants(appointment, resolver, photos)
    meta = appointment.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    version = str(meta.get("versionId", ""))
    return IncomingBooking.single(
        uid,
        start,
        end,
        status=ours,
        sequence=int(version) if version.isdigit() and len(version) < 10 else 0,
        last_modified_utc=_optional_instant(meta.get("lastUpdated")),
        title=_text(appointment.get("description"))
        or _concept_text(appointment.get("serviceType"))
        or _concept_text(appointment.get("appointmentType")),
        location=people.place[:500],
        description=_text(appointment.get("patientInstruction")),
        practitioner_name=", ".join(n for n in people.names if n)[:200] or None,
        practitioner_photo=people.photo,
        mode=_mode(appointment, people.hints),
        interpreter=people.interpreter,
    )


@dataclass
class _People:
    """What an appointment's participants say: who, where, and hints of how."""

    names: list[str] = field(default_factory=list)
    photo: str | None = None
    place: str = ""
    hints: list[str] = field(default_factory=list)
    interpreter: bool = False


def _participants(appointment: Mapping[str, Any], resolver: _Resolver, photos: _Photos) -> _People:
    people = _People()
    for participant in _list(appointment.get("participant")):
        if not isinstance(participant, dict) or participant.get("status") == "declined":
            continue
        if _TRANSLATOR in _codes(participant.get("type")):
            people.interpreter = True
        actor = participant.get("actor")
        if not isinstance(actor, dict):
            continue
        display = _text(actor.get("display"))
        reference = actor.get("reference")
        kind = reference.split("/")[-2] if isinstance(reference, str) and "/" in reference else ""
        if kind in ("Practitioner", "PractitionerRole"):
            practitioner = _practitioner(resolver, reference, appointment)
            people.names.append((_name(practitioner) if practitioner else "") or display)
            if practitioner and people.photo is None:
                people.photo = photos.of(practitioner)
        elif kind == "Location" and not people.place:
            location = resolver.resolve(reference, appointment, ("Location",))
            people.place = (_place(location) if location else "") or display
        elif not reference and display:
            people.hints.append(display)  # e.g. "Phone Call": a participant that is no one
    return people


def _practitioner(
    resolver: _Resolver, reference: object, appointment: Mapping[str, Any]
) -> dict[str, Any] | None:
    found = resolver.resolve(reference, appointment, ("Practitioner", "PractitionerRole"))
    if found and found.get("resourceType") == "PractitionerRole":
        role = found.get("practitioner")
        if not isinstance(role, dict):
            return None
        person = resolver.resolve(role.get("reference"), found, ("Practitioner",))
        return person or ({"name": [{"text": role["display"]}]} if role.get("display") else None)
    return found


def _refuse_stu3_codes(appointment: Mapping[str, Any]) -> None:
    concepts = [*_list(appointment.get("serviceType")), appointment.get("appointmentType")]
    concepts += _list(appointment.get("specialty")) + _list(appointment.get("serviceCategory"))
    for system, _code in _codes(concepts):
        if system.startswith(_OLD_CODE_SYSTEMS):
            raise ProviderError(
                "fhir.version",
                "the appointments are coded with FHIR STU3's code systems; only R4 can be read",
            )


def _codes(concepts: object) -> set[tuple[str, str]]:
    """(system, code) of every coding in one CodeableConcept or a list of them."""
    found: set[tuple[str, str]] = set()
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            for coding in _list(concept.get("coding")):
                if isinstance(coding, dict):
                    found.add((str(coding.get("system", "")), str(coding.get("code", ""))))
    return found


def _concept_text(concepts: object) -> str:
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if not isinstance(concept, dict):
            continue
        if _text(concept.get("text")):
            return _text(concept.get("text"))
        for coding in _list(concept.get("coding")):
            if isinstance(coding, dict) and _text(coding.get("display")):
                return _text(coding.get("display"))
    return ""


def _concept_words(concepts: object) -> list[str]:
    words: list[str] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            words.append(_text(concept.get("text")))
            words += [
                _text(c.get("display")) for c in _list(concept.get("coding")) if isinstance(c, dict)
            ]
    return [w for w in words if w]


def _mode(appointment: Mapping[str, Any], hints: list[str]) -> str:
    """in_person, phone or video where the appointment says so; in person otherwise."""
    concepts = [*_list(appointment.get("serviceType")), appointment.get("appointmentType")]
    for key in sorted(_codes(concepts)):
        if key in _MODE_CODES:
            return _MODE_CODES[key]
    return mode_from_words(_concept_words(concepts) + hints) or "in_person"


def _name(practitioner: Mapping[str, Any]) -> str:
    """Given names and family name of the official (or first) name, or its text."""
    names = [n for n in _list(practitioner.get("name")) if isinstance(n, dict)]
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(str(n.get("use")), 2))
    for name in names:
        given = [_text(g) for g in _list(name.get("given"))]
        parts = [*given, _text(name.get("family"))]
        written = " ".join(p for p in parts if p)
        if written or _text(name.get("text")):
            return written or _text(name.get("text"))
    return ""


def _place(location: Mapping[str, Any]) -> str:
    """The location's name and street address, as one line."""
    parts = [_text(location.get("name"))]
    address = location.get("address")
    if isinstance(address, dict):
        parts += [_text(line) for line in _list(address.get("line"))]
        town = " ".join(
            p for p in (_text(address.get("postalCode")), _text(address.get("city"))) if p
        )
        parts.append(town)
    return ", ".join(p for p in parts if p)


def _text(value: object) -> str:
    return " ".join(value.split())[:500] if isinstance(value, str) else ""


def _instant(value: object) -> datetime:
    moment = _optional_instant(value)
    if moment is None:
        raise _Damaged("event.damaged", "the appointment's time is not an instant with a zone")
    return moment


def _optional_instant(value: object) -> datetime | None:
    """A FHIR instant (date, time and zone) in UTC; None for anything else."""
    if not isinstance(value, str) or not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value
    ):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC)


class FhirAdapter:
    """A person's appointments on a FHIR R4 server as a synced source.

    Secrets: ``url`` (the FHIR base), and ``username`` and ``password`` (HTTP Basic) or
    ``token`` (a bearer token; a configured password without a user name is one too).
    The person is found by their personnummer. The cursor holds a digest of the last read
    and what each practitioner photo was made into.
    """

    kind = ADAPTER

    def prepare(self, fields: Mapping[str, str], allowed_hosts: frozenset[str]) -> Prepared:
        token = fields.get("token", "").strip()
        if token and fields.get("username", "").strip():
            raise ProviderError("source.url", "give a token or a user name, not both")
        prepared = prepared_address(base_url(fields.get("url", "")), fields, allowed_hosts)
        if token:
            prepared.secrets["token"] = token
        return prepared

    def read(self, config: SourceConfig, window: Window, cursor: Mapping[str, str]) -> AdapterRead:
        url = config.secrets.get("url")
        if not url:
            raise ProviderError("source.secret", "the source has no address")
        auth: Auth | None = None
        username, password = config.secrets.get("username"), config.secrets.get("password")
        if username:
            auth = (username, password or "")
        elif config.secrets.get("token") or password:
            # A password configured without a user name (CLI --password-from) is a token.
            auth = BearerToken(config.secrets.get("token") or password or "")
        return read_appointments(
            url,
            window,
            cursor,
            personnummer=config.personnummer,
            auth=auth,
            max_bytes=config.max_bytes,
            timeout=config.timeout,
            policy=AddressPolicy(config.allowed_hosts),
        )
