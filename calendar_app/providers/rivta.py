"""The RIV-TA crm:scheduling 1.1 adapter: GetSubjectOfCareSchedule, the national service
contract behind 1177's "Bokade tider", called over SOAP with zeep from the contract's own
WSDL and XSDs.

One read is one call: the LogicalAddress header names the producer (the healthcare
facility's HSA-id, or the national platform's address of an aggregating service), the
body names the facility and the person. The answer lists every time the person has
there, so the read is complete and the window is not sent (the contract has none).

The national platform wants mutual TLS: a client certificate and key (SITHS) and the
platform's CA, set by ``CALENDAR_APP_RIVTA_CLIENT_CERT``, ``…_CLIENT_KEY`` and
``…_CA_BUNDLE``. The service contract itself is Inera's published WSDL, found at
``CALENDAR_APP_RIVTA_WSDL`` (by default the copy in ``../shared/corpus/rivta/``).

Times in the message carry no zone: they are Swedish local time. A time that does not
exist or exists twice (the clock changes) is not guessed; that timeslot is skipped with
the reason. The message's flags say whether the person may cancel, rebook or send a
message; an absent flag means not allowed. No message made here contains what the
producer said (a SOAP fault may echo the personnummer).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from calendar_app.domain.bookings import IncomingBooking, ReadResult, SkippedEvent
from calendar_app.domain.clashes import local_instant
from calendar_app.domain.errors import DomainError
from calendar_app.domain.modes import mode_from_words
from calendar_app.providers import (
    AdapterRead,
    Prepared,
    ProviderError,
    SourceConfig,
    Window,
    netguard,
)
from calendar_app.providers.ics_url import DEADLINE_TIMEOUTS, http_url, prepared_address
from calendar_app.providers.netguard import PUBLIC_ONLY, AddressPolicy

ADAPTER = "rivta"
TIMEOUT_SECONDS = 20.0
SWEDISH_TIME = ZoneInfo("Europe/Stockholm")
BINDING = (
    "{urn:riv:crm:scheduling:GetSubjectOfCareSchedule:1:rivtabp21}"
    "GetSubjectOfCareScheduleResponderBinding"
)
_TS = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)")
_HSA_ID = re.compile(r"[A-Za-z0-9\-]{1,64}")


@dataclass(frozen=True)
class Contract:
    """Where the service contract is and how to reach the national platform."""

    wsdl: str
    client_cert: str = ""
    client_key: str = ""
    ca_bundle: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Contract:
        return cls(
            wsdl=settings.get("RIVTA_WSDL", ""),
            client_cert=settings.get("RIVTA_CLIENT_CERT", ""),
            client_key=settings.get("RIVTA_CLIENT_KEY", ""),
            ca_bundle=settings.get("RIVTA_CA_BUNDLE", ""),
        )


class _HideMessages(logging.Filter):
    """zeep's transport logs whole SOAP messages (the personnummer in them) at DEBUG: only
    that a message went and came is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "zeep transport: %s (message left out)"
        record.args = (record.funcName,)
        return True


_HIDE_MESSAGES = _HideMessages()


def read_schedule(
    url: str,
    *,
    logical_address: str,
    healthcare_facility: str,
    personnummer: str,
    contract: Contract,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int,
    policy: AddressPolicy = PUBLIC_ONLY,
) -> ReadResult:
    """Every timeslot the person has at the facility, as the producer lists them."""
    target = http_url(url)
    netguard.check_url(target, policy)
    if not re.fullmatch(r"\d{12}", personnummer):
        raise ProviderError("rivta.subject", "the person has no personnummer to ask for")
    transport_log = logging.getLogger("zeep.transports")
    if _HIDE_MESSAGES not in transport_log.filters:
        transport_log.addFilter(_HIDE_MESSAGES)
    session = netguard.guarded_session(policy)
    session.hooks["response"].append(netguard.size_cap(max_bytes))
    if contract.client_cert:
        key = contract.client_key
        session.cert = (contract.client_cert, key) if key else contract.client_cert
    if contract.ca_bundle:
        session.verify = contract.ca_bundle
    try:
        with netguard.time_limit(timeout * DEADLINE_TIMEOUTS), _as_provider_errors():
            client = zeep.Client(
                _wsdl(contract.wsdl),
                transport=Transport(session=session, timeout=timeout, operation_timeout=timeout),
            )
            service = client.create_service(BINDING, target)
            answer = service.GetSubjectOfCareSchedule(
                healthcare_facility=healthcare_facility,
                subject_of_care=personnummer,
                _soapheaders={"LogicalAddress": logical_address},
            )
    finally:
        session.close()
    slots = _timeslots(answer)
    bookings: list[IncomingBooking] = []
    skipped: list[SkippedEvent] = []
    for slot in slots:
        try:
            bookings.append(_booking(slot, healthcare_facility))
        except _Skipped as exc:
            skipped.append(SkippedEvent(exc.uid, exc.code, exc.reason))
    return ReadResult(bookings=tuple(bookings), skipped=tuple(skipped))


def _wsdl(path: str) -> str:
    if not path or not Path(path).is_file():
        raise ProviderError(
            "rivta.contract", "the service contract (GetSubjectOfCareSchedule WSDL) is not found"
        )
    return path


@contextmanager
def _as_provider_errors() -> Iterator[None]:
    """What zeep, lxml or the network raised, as a ProviderError naming only its kind."""
    try:
        yield
    except ProviderError:
        raise
    except zeep.exceptions.Fault as exc:
        if exc.code is None:  # zeep's name for an error status whose body is no SOAP fault
            raise ProviderError("source.http", "the producer answered an HTTP error") from None
        raise ProviderError("rivta.fault", "the producer answered with a SOAP fault") from None
    except netguard.AddressBlocked:
        raise ProviderError("source.address_blocked", netguard.BLOCKED_MESSAGE) from None
    except netguard.AnswerTooLarge:
        raise ProviderError("ics.too_large", "the producer's answer is too large") from None
    except requests.exceptions.SSLError:
        raise ProviderError("rivta.tls", "the TLS handshake with the producer failed") from None
    except requests.Timeout:
        raise ProviderError("source.timeout", "the producer did not answer in time") from None
    except requests.RequestException as exc:
        raise ProviderError(
            "source.unreachable", f"could not reach the producer ({type(exc).__name__})"
        ) from None
    except zeep.exceptions.TransportError as exc:
        if exc.status_code in (401, 403):
            raise ProviderError("source.auth", "the platform refused the certificate") from None
        if exc.status_code >= 400:
            raise ProviderError("source.http", f"the producer answered {exc.status_code}") from None
        # zeep says "transport" for a 200 whose body is not XML.
        raise ProviderError("source.protocol", "the producer's answer is not XML") from None
    except (zeep.exceptions.Error, ValueError, TypeError, AttributeError) as exc:
        # zeep's XMLSyntaxError, ValidationError, unexpected elements; lxml's errors.
        raise ProviderError(
            "source.protocol",
            f"the producer's answer does not follow the contract ({type(exc).__name__})",
        ) from None


def _timeslots(answer: Any) -> list[Any]:
    slots = answer if isinstance(answer, list) else getattr(answer, "timeslotDetail", None)
    if slots is None:
        return []  # an empty answer: the person has no times there
    if not isinstance(slots, list):
        raise ProviderError("source.protocol", "the producer's answer does not follow the contract")
    return slots


class _Skipped(Exception):
    def __init__(self, uid: str | None, code: str, reason: str) -> None:
        super().__init__(reason)
        self.uid, self.code, self.reason = uid, code, reason


def _booking(slot: Any, facility: str) -> IncomingBooking:
    booking_id = _text(getattr(slot, "bookingId", None), 200)
    if not booking_id:
        raise _Skipped(None, "event.damaged", "the timeslot has no booking id")
    uid = f"{_text(getattr(slot, 'healthcare_facility', None), 64) or facility}/{booking_id}"
    start = _instant(uid, getattr(slot, "startTimeInclusive", None))
    end = _instant(uid, getattr(slot, "endTimeExclusive", None))
    if end < start:
        raise _Skipped(uid, "event.end_before_start", "the timeslot ends before it starts")
    time_type = _text(getattr(slot, "timeTypeName", None), 100)
    care_type = _text(getattr(slot, "careTypeName", None), 100)
    purpose = _text(getattr(slot, "purpose", None), 500)
    return IncomingBooking.single(
        uid,
        start,
        end,
        tzid=SWEDISH_TIME.key,
        status="confirmed",
        title=purpose or care_type or time_type,
        location=_text(getattr(slot, "healthcare_facility_name", None), 500),
        description=_text(getattr(slot, "reason", None), 2000),
        practitioner_name=_text(getattr(slot, "performerName", None), 200) or None,
        mode=mode_from_words([time_type, care_type]) or "in_person",
        time_type=time_type or None,
        care_type=care_type or None,
        # Absent means not allowed (the contract's own rule).
        cancel_allowed=getattr(slot, "cancel_booking_allowed", None) is True,
        rebook_allowed=getattr(slot, "rebooking_allowed", None) is True,
        message_allowed=getattr(slot, "message_allowed", None) is True,
    )


def _instant(uid: str, value: object) -> datetime:
    """A crm:scheduling time (YYYYMMDDhhmmss, Swedish local time) in UTC."""
    match = _TS.fullmatch(str(value or ""))
    if match is None:
        raise _Skipped(uid, "event.no_start", "the timeslot has no time")
    year, month, mday, hour, minute, second = (int(part) for part in match.groups())
    try:
        day, clock = date(year, month, mday), time(hour, minute, second)
    except ValueError:
        raise _Skipped(uid, "event.damaged", "the timeslot's time is not a date") from None
    try:
        return local_instant(day, clock, SWEDISH_TIME).astimezone(UTC)
    except DomainError as exc:
        # The hour the clocks skip or repeat: which instant was meant cannot be known.
        raise _Skipped(uid, "event.damaged", exc.message) from None


def _text(value: object, limit: int) -> str:
    return " ".join(str(value).split())[:limit] if value is not None else ""


class RivtaAdapter:
    """A person's times at one healthcare facility through crm:scheduling.

    Settings: ``logical_address`` (the producer's logical address on the national
    platform) and ``healthcare_facility`` (the HSA-id asked for; by default the logical
    address). Secret: ``url``, the platform's endpoint for the contract.
    """

    kind = ADAPTER

    def prepare(self, fields: Mapping[str, str], allowed_hosts: frozenset[str]) -> Prepared:
        logical = fields.get("logical_address", "").strip()
        facility = fields.get("healthcare_facility", "").strip() or logical
        for value in (logical, facility):
            if not _HSA_ID.fullmatch(value):
                raise ProviderError(
                    "rivta.address", "give the logical address as an HSA-id, e.g. SE2321000065-1234"
                )
        prepared = prepared_address(http_url(fields.get("url", "")), {}, allowed_hosts)
        prepared.settings.update(logical_address=logical, healthcare_facility=facility)
        return prepared

    def read(self, config: SourceConfig, window: Window, cursor: Mapping[str, str]) -> AdapterRead:
        url = config.secrets.get("url")
        if not url:
            raise ProviderError("source.secret", "the source has no address")
        read = read_schedule(
            url,
            logical_address=config.settings.get("logical_address", ""),
            healthcare_facility=config.settings.get("healthcare_facility", ""),
            personnummer=config.personnummer,
            contract=Contract.from_settings(config.service_settings),
            timeout=config.timeout,
            max_bytes=config.max_bytes,
            policy=AddressPolicy(config.allowed_hosts),
        )
        return AdapterRead(read, {})
