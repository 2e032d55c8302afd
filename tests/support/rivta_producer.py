"""A local crm:scheduling producer: answers GetSubjectOfCareSchedule (RIVTABP21, SOAP 1.1)
per the service contract in ../shared/corpus/rivta/, optionally over mutual TLS.

Every request it receives and every answer it gives is validated against the contract's
own XSDs, so a test passing here also shows that our client speaks the contract. The core
schema's personnummer pattern is written ``^…$``, which XSD takes literally (no real
personnummer matches it, see the corpus README): the schemas are validated from a copy in
which only that facet is corrected.
"""

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree
from werkzeug.wrappers import Request, Response

from tests.conftest import CORPUS
from tests.support.feeds import serving

CONTRACT = CORPUS / "rivta" / "TD_SCHEDULING_1_1_0_R"
WSDL = (
    CONTRACT
    / "interactions/GetSubjectOfCareScheduleInteraction"
    / "GetSubjectOfCareScheduleInteraction_1.1_RIVTABP21.wsdl"
)
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
RESPONDER = "urn:riv:crm:scheduling:GetSubjectOfCareScheduleResponder:1"
CORE = "urn:riv:crm:scheduling:1"
EXT = "urn:riv:crm:scheduling:1.1"
REGISTRY = "urn:riv:itintegration:registry:1"
# The elements of core:TimeslotType in the contract's order.
SLOT_FIELDS = (
    "startTimeInclusive",
    "endTimeExclusive",
    "healthcare_facility",
    "performer",
    "bookingId",
    "subject_of_care",
    "purpose",
    "reason",
    "resourceName",
    "healthcare_facility_name",
    "performerName",
    "resourceID",
    "timeTypeName",
    "timeTypeID",
    "careTypeName",
    "careTypeID",
    "cancel_booking_allowed",
    "rebooking_allowed",
    "message_allowed",
)


def responder_schema(folder: Path) -> etree.XMLSchema:
    """The responder XSD, from a copy with the personnummer pattern's anchors removed."""
    copy = folder / "TD_SCHEDULING_1_1_0_R"
    if not copy.exists():
        shutil.copytree(CONTRACT, copy)
        core = copy / "core_components" / "crm_scheduling_1.1.xsd"
        text = core.read_text(encoding="utf-8")
        core.write_text(text.replace('"^[0-9]{8}', '"[0-9]{8}').replace('{3}$"', '{3}"'))
    path = (
        copy
        / "interactions/GetSubjectOfCareScheduleInteraction"
        / "GetSubjectOfCareScheduleResponder_1.1.xsd"
    )
    return etree.XMLSchema(etree.parse(str(path)))


@dataclass
class Asked:
    logical_address: str
    healthcare_facility: str
    subject_of_care: str
    soap_action: str


@dataclass
class Producer:
    """Timeslots by (healthcare facility, personnummer); what a test wants to go wrong."""

    schema: etree.XMLSchema
    slots: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    fault: str | None = None  # answer a SOAP fault with this text
    delay: float = 0.0
    raw: bytes | None = None  # answer these bytes as they are
    strict: bool = True  # refuse to send an answer that breaks the contract (a test's mistake)
    asked: list[Asked] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # schema errors in what it received
    url: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if not self.url.endswith(request.path):
            return Response(b"<html><body>Not found</body></html>", 404, content_type="text/html")
        envelope = etree.fromstring(request.get_data())
        body = envelope.find(f"{{{SOAP}}}Body")
        question = body[0] if body is not None and len(body) else None
        if question is None or not self.schema.validate(question):
            self.invalid.append(str(self.schema.error_log))
        logical = envelope.findtext(f"{{{SOAP}}}Header/{{{REGISTRY}}}LogicalAddress") or ""
        facility = (
            question.findtext(f"{{{RESPONDER}}}healthcare_facility") if question is not None else ""
        )
        subject = (
            question.findtext(f"{{{RESPONDER}}}subject_of_care") if question is not None else ""
        )
        self.asked.append(
            Asked(logical, facility or "", subject or "", request.headers.get("SOAPAction", ""))
        )
        if self.delay:
            time.sleep(self.delay)
        if self.raw is not None:
            return Response(self.raw, content_type="text/xml; charset=utf-8")
        if self.fault is not None:
            return Response(
                _envelope(_fault(self.fault)), 500, content_type="text/xml; charset=utf-8"
            )
        answer = _schedule(self.slots.get((facility or "", subject or ""), []))
        element = etree.fromstring(answer)
        if self.strict and not self.schema.validate(element):
            raise AssertionError(
                f"the fake producer's answer breaks the contract: {self.schema.error_log}"
            )
        return Response(_envelope(answer), content_type="text/xml; charset=utf-8")


def _envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def _fault(text: str) -> str:
    return (
        "<soap:Fault><faultcode>soap:Server</faultcode>"
        f"<faultstring>{escape(text)}</faultstring></soap:Fault>"
    )


def _schedule(slots: list[dict[str, Any]]) -> str:
    parts = [
        f'<r:GetSubjectOfCareScheduleResponse xmlns:r="{RESPONDER}" xmlns:c="{CORE}"'
        f' xmlns:e="{EXT}">'
    ]
    for slot in slots:
        parts.append("<r:timeslotDetail>")
        for name in SLOT_FIELDS:
            if slot.get(name) is not None:
                value = slot[name]
                value = (
                    ("true" if value else "false")
                    if isinstance(value, bool)
                    else escape(str(value))
                )
                parts.append(f"<c:{name}>{value}</c:{name}>")
        if slot.get("isInvitation") is not None:
            parts.append(
                f"<e:isInvitation>{'true' if slot['isInvitation'] else 'false'}</e:isInvitation>"
            )
        parts.append("</r:timeslotDetail>")
    parts.append("</r:GetSubjectOfCareScheduleResponse>")
    return "".join(parts)


@contextmanager
def producer(schema: etree.XMLSchema, tls: ssl.SSLContext | None = None) -> Iterator[Producer]:
    fake = Producer(schema)
    with serving(fake, tls) as origin:
        fake.url = f"{origin}/vp/GetSubjectOfCareSchedule/1/rivtabp21"
        yield fake
