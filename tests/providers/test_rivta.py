"""The RIV-TA crm:scheduling adapter against a local producer that answers per the
service contract (and checks that our requests do): names, Swedish local times across
the clock changes, time and care type, purpose, the cancel/rebook/message flags; an empty
answer, a SOAP fault, a timeout, junk; mutual TLS; and the calendar kept current."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from calendar_app.domain.bookings import ReadResult
from calendar_app.providers import ProviderError, SourceConfig, Window
from calendar_app.providers.rivta import RivtaAdapter
from tests.support.helpers import PNR_ALVA
from tests.support.oidc_broker import free_port
from tests.support.rivta_producer import WSDL, Producer, producer, responder_schema

LOCAL = frozenset({"127.0.0.1"})
PNR = PNR_ALVA
FACILITY = "SE2321000065-7331"
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
ACTION = "urn:riv:crm:scheduling:GetSubjectOfCareScheduleResponder:1:GetSubjectOfCareSchedule"


@pytest.fixture(scope="session")
def schema(tmp_path_factory: pytest.TempPathFactory):
    return responder_schema(tmp_path_factory.mktemp("contract"))


@pytest.fixture
def fake(schema) -> Iterator[Producer]:
    with producer(schema) as running:
        yield running


def slot(booking_id: str, start: str, end: str, **fields) -> dict:
    return {
        "startTimeInclusive": start,
        "endTimeExclusive": end,
        "healthcare_facility": FACILITY,
        "bookingId": booking_id,
        "subject_of_care": PNR,
        **fields,
    }


def config(url: str, *, timeout: float = 5.0, **service: str) -> SourceConfig:
    return SourceConfig(
        settings={"logical_address": FACILITY, "healthcare_facility": FACILITY},
        secrets={"url": url},
        default_zone="Europe/Stockholm",
        max_bytes=1024 * 1024,
        timeout=timeout,
        allowed_hosts=LOCAL,
        personnummer=PNR,
        service_settings={"RIVTA_WSDL": str(WSDL), **service},
    )


def read(url: str, **kw) -> ReadResult:
    result = RivtaAdapter().read(config(url, **kw), WINDOW, {})
    assert result.read is not None
    return result.read


def failure(url: str, **kw) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        read(url, **kw)
    assert PNR not in str(caught.value) and url not in str(caught.value)
    return caught.value


def test_a_schedule_is_read_with_names_times_types_and_flags(fake):
    fake.slots[(FACILITY, PNR)] = [
        slot("b1", "20261202100000", "20261202104500", performerName="Karin Ek",
             healthcare_facility_name="Psykiatrimottagningen Växjö", purpose="Återbesök",
             reason="Uppföljning av medicinering", timeTypeName="Telefontid",
             careTypeName="Sjuksköterska", cancel_booking_allowed=True, rebooking_allowed=True,
             message_allowed=True, isInvitation=False),
        slot("b2", "20260615100000", "20260615110000", careTypeName="Läkarbesök"),
    ]  # fmt: skip
    found = {b.uid: b for b in read(fake.url).bookings}

    first = found[f"{FACILITY}/b1"]
    # Swedish local time without a zone: 10.00 in December is 09.00 UTC.
    assert (first.start_utc, first.end_utc) == (
        datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 45, tzinfo=UTC),
    )
    assert first.practitioner_name == "Karin Ek"
    assert first.location == "Psykiatrimottagningen Växjö"
    assert (first.title, first.description) == ("Återbesök", "Uppföljning av medicinering")
    assert (first.time_type, first.care_type, first.mode) == (
        "Telefontid",
        "Sjuksköterska",
        "phone",
    )
    assert (first.cancel_allowed, first.rebook_allowed, first.message_allowed) == (True, True, True)

    second = found[f"{FACILITY}/b2"]
    assert second.start_utc == datetime(2026, 6, 15, 8, 0, tzinfo=UTC)  # summer time
    assert (second.title, second.mode, second.practitioner_name) == (
        "Läkarbesök",
        "in_person",
        None,
    )
    # Absent flags mean not allowed.
    assert (second.cancel_allowed, second.rebook_allowed, second.message_allowed) == (
        False, False, False,
    )  # fmt: skip


def test_the_request_follows_the_contract_and_names_the_producer(fake):
    read(fake.url)
    [asked] = fake.asked
    assert (asked.logical_address, asked.healthcare_facility, asked.subject_of_care) == (
        FACILITY, FACILITY, PNR,
    )  # fmt: skip
    assert asked.soap_action.strip('"') == ACTION
    assert fake.invalid == [], "our request breaks the contract's schema"
    assert PNR not in fake.url


def test_the_personnummer_is_in_no_log_line_even_at_debug(fake, caplog):
    import logging

    fake.fault = f"Ingen patient {PNR}"
    with caplog.at_level(logging.DEBUG):
        failure(fake.url)
        fake.fault = None
        fake.slots[(FACILITY, PNR)] = [slot("b1", "20261202100000", "20261202104500")]
        read(fake.url)
    assert caplog.records, "zeep and urllib3 log at DEBUG"
    assert PNR not in caplog.text and PNR[2:] not in caplog.text


def test_times_the_clock_change_skips_or_repeats_are_not_guessed(fake):
    fake.strict = False  # a producer that breaks the contract (month 13) is met too
    fake.slots[(FACILITY, PNR)] = [
        slot("gap", "20260329023000", "20260329033000"),  # 02.30 does not exist that night
        slot("twice", "20261025023000", "20261025033000"),  # 02.30 happens twice
        slot("ok", "20261025100000", "20261025110000"),
        slot("backwards", "20261201100000", "20261201090000"),
        slot("nodate", "20261301100000", "20261301110000"),
        {"healthcare_facility": FACILITY, "startTimeInclusive": "20261201100000"},  # no id
    ]
    result = read(fake.url)
    assert [b.uid for b in result.bookings] == [f"{FACILITY}/ok"]
    assert {s.uid: s.code for s in result.skipped} == {
        f"{FACILITY}/gap": "event.damaged",
        f"{FACILITY}/twice": "event.damaged",
        f"{FACILITY}/backwards": "event.end_before_start",
        f"{FACILITY}/nodate": "event.damaged",
        None: "event.damaged",
    }


def test_an_empty_answer_is_a_complete_empty_read(fake):
    result = read(fake.url)
    assert result.bookings == () and result.complete


def test_a_soap_fault_is_refused_without_what_the_producer_said(fake):
    fake.fault = f"Ingen patient {PNR} hos vårdenheten"
    error = failure(fake.url)
    assert error.code == "rivta.fault" and "Ingen patient" not in error.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"<html><body>Bad gateway</body></html>", "source.protocol"),
        (b"<?xml version='1.0'?><soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'>",
         "source.protocol"),
        (b"not xml at all", "source.protocol"),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_the_contract_is_refused(fake, raw, code):
    fake.raw = raw
    assert failure(fake.url).code == code


def test_a_producer_too_slow_for_the_deadline_times_out(fake):
    fake.delay = 1.5
    assert failure(fake.url, timeout=0.3).code == "source.timeout"


def test_an_http_error_without_a_soap_fault_is_an_http_failure(fake):
    assert failure(fake.url.replace("/vp/", "/elsewhere/")).code == "source.http"
    assert fake.asked == []


def test_a_closed_port_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}/vp/GetSubjectOfCareSchedule/1/rivtabp21"
    assert failure(url).code == "source.unreachable"


def test_a_missing_contract_is_named(fake, tmp_path):
    assert failure(fake.url, RIVTA_WSDL=str(tmp_path / "none.wsdl")).code == "rivta.contract"


def test_prepare_checks_the_hsa_ids_and_seals_the_address(fake):
    prepared = RivtaAdapter().prepare({"url": fake.url, "logical_address": FACILITY}, LOCAL)
    assert prepared.settings["healthcare_facility"] == FACILITY
    assert prepared.secrets == {"url": fake.url}
    for bad in ("", "SE 2321", "x" * 65, "<script>"):
        with pytest.raises(ProviderError) as caught:
            RivtaAdapter().prepare({"url": fake.url, "logical_address": bad}, LOCAL)
        assert caught.value.code == "rivta.address"


# --- mutual TLS --------------------------------------------------------------------------


def _certificate(name: str, key, issuer_name, issuer_key, *, ca: bool, ip: bool = False):
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert, key) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A platform CA, the producer's certificate for 127.0.0.1, our client certificate,
    and a client certificate from another CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Testplattformens CA", ca_key, None, ca_key, ca=True)
    ca_name = ca.subject
    files = {"ca": _write(folder, "ca", ca, ca_key)}
    server_key = ec.generate_private_key(ec.SECP256R1())
    files["server"] = _write(
        folder, "server", _certificate("producent", server_key, ca_name, ca_key, ca=False, ip=True),
        server_key,
    )  # fmt: skip
    client_key = ec.generate_private_key(ec.SECP256R1())
    files["client"] = _write(
        folder, "client", _certificate("personkalendern", client_key, ca_name, ca_key, ca=False),
        client_key,
    )  # fmt: skip
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    files["rogue"] = _write(
        folder, "rogue", _certificate("någon annan", rogue_key, None, rogue_key, ca=False),
        rogue_key,
    )  # fmt: skip
    return files


@pytest.fixture
def tls_fake(schema, pki) -> Iterator[Producer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki["server"])
    context.verify_mode = ssl.CERT_REQUIRED  # the platform wants our certificate
    context.load_verify_locations(pki["ca"][0])
    with producer(schema, tls=context) as running:
        running.slots[(FACILITY, PNR)] = [slot("t1", "20261202100000", "20261202110000")]
        yield running


def test_mutual_tls_with_the_platforms_ca_and_our_certificate(tls_fake, pki):
    cert, key = pki["client"]
    result = read(tls_fake.url, RIVTA_CLIENT_CERT=cert, RIVTA_CLIENT_KEY=key,
                  RIVTA_CA_BUNDLE=pki["ca"][0])  # fmt: skip
    assert [b.uid for b in result.bookings] == [f"{FACILITY}/t1"]


@pytest.mark.parametrize("client", [None, "rogue"])
def test_without_an_accepted_client_certificate_the_platform_is_not_reached(tls_fake, pki, client):
    settings = {"RIVTA_CA_BUNDLE": pki["ca"][0]}
    if client:
        settings |= {"RIVTA_CLIENT_CERT": pki[client][0], "RIVTA_CLIENT_KEY": pki[client][1]}
    assert failure(tls_fake.url, **settings).code in ("rivta.tls", "source.unreachable")
    assert tls_fake.asked == []


def test_a_producer_certificate_from_another_ca_is_refused(tls_fake, pki):
    cert, key = pki["client"]
    error = failure(tls_fake.url, RIVTA_CLIENT_CERT=cert, RIVTA_CLIENT_KEY=key)  # system CAs
    assert error.code == "rivta.tls" and tls_fake.asked == []


# --- kept current through sync, and shown on the booking's page -------------------------


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SOURCE_ALLOWED_HOSTS": "127.0.0.1", "SYNC_TIMEOUT_SECONDS": 2}


def add_rivta_source(app, session, person_id: int, url: str, now: datetime) -> int:
    from calendar_app.services import sources, sync
    from calendar_app.services.access import Actor

    return sources.add_source(
        session,
        Actor.operator(),
        person_id=person_id,
        adapter="rivta",
        fields={"url": url, "logical_address": FACILITY},
        unit_name="Psykiatrimottagningen Växjö",
        name="1177",
        poll_minutes=5,
        policy=sync.SyncPolicy.from_config(app.config),
        now=now,
    ).id


def stored(session, person_id: int) -> dict:
    from sqlalchemy import select

    from calendar_app.models import Booking, Reminder

    session.expire_all()
    rows = {
        b.uid: (b.status.value, b.start_utc, b.cancel_allowed, b.time_type)
        for b in session.scalars(select(Booking).where(Booking.person_id == person_id))
    }
    reminders = sorted(
        (r.booking_id, r.state.value, r.send_at_utc)
        for r in session.scalars(select(Reminder).where(Reminder.person_id == person_id))
    )
    session.commit()
    return {"bookings": rows, "reminders": reminders}


def test_the_producer_keeps_the_calendar_current_and_errors_change_nothing(
    app, client, session, now, fake
):
    from sqlalchemy import select

    from calendar_app.models import Booking
    from calendar_app.services import sync
    from tests.support.world import build_world, log_in

    world = build_world(session, now)
    fake.slots[(FACILITY, world.pnr)] = [
        slot(f"v{n}", f"202612{n + 1:02d}100000", f"202612{n + 1:02d}110000",
             subject_of_care=world.pnr, timeTypeName="Besök", cancel_booking_allowed=True)
        for n in range(5)
    ]  # fmt: skip
    source_id = add_rivta_source(app, session, world.person_id, fake.url, now)
    factory = app.extensions["session_factory"]
    policy = sync.SyncPolicy.from_config(app.config)
    [first] = sync.sync_due(factory, policy, worker="t", clock=lambda: now)
    assert first.summary is not None and first.summary.added == 5, first.line()

    # The booking's page shows what the person may do and what kind of time it is.
    booking = session.scalars(select(Booking).where(Booking.uid == f"{FACILITY}/v0")).one()
    booking_id = booking.id
    session.commit()
    log_in(client, "person")
    page = client.get(f"/people/{world.person_id}/bookings/{booking_id}").get_data(as_text=True)
    assert "Du kan själv avboka" in page and "Besök" in page
    assert "kan inte ombokas via nätet" in page  # rebooking absent: not allowed

    # A SOAP fault, a timeout and junk each change nothing stored.
    before = stored(session, world.person_id)
    clock = now
    for trouble in ({"fault": "Tekniskt fel"}, {"delay": 7.0}, {"raw": b"<html/>"}):
        for name, value in trouble.items():
            setattr(fake, name, value)
        clock += timedelta(hours=1)
        [failed] = sync.sync_due(factory, policy, worker="t", clock=lambda c=clock: c)
        assert failed.error_code, failed.line()
        assert stored(session, world.person_id) == before, trouble
        fake.fault, fake.delay, fake.raw = None, 0.0, None

    # On the producer's side one time moves and one is cancelled (no longer listed).
    fake.slots[(FACILITY, world.pnr)][0]["startTimeInclusive"] = "20261201140000"
    fake.slots[(FACILITY, world.pnr)][0]["endTimeExclusive"] = "20261201150000"
    del fake.slots[(FACILITY, world.pnr)][1]
    clock += timedelta(hours=1)
    [changed] = sync.sync_due(factory, policy, worker="t", clock=lambda: clock)
    assert changed.summary is not None, changed.line()
    after = stored(session, world.person_id)["bookings"]
    assert after[f"{FACILITY}/v0"][:2] == ("confirmed", datetime(2026, 12, 1, 13, tzinfo=UTC))
    assert after[f"{FACILITY}/v1"][0] == "cancelled"
    assert after[f"{FACILITY}/v2"] == before["bookings"][f"{FACILITY}/v2"]

    # An empty answer after five visits is held for review, not applied.
    fake.slots[(FACILITY, world.pnr)] = []
    clock += timedelta(hours=1)
    [held] = sync.sync_due(factory, policy, worker="t", clock=lambda: clock)
    assert held.review_id is not None
    assert stored(session, world.person_id)["bookings"] == after
    assert source_id


def test_the_command_adds_a_rivta_source_with_its_logical_address(app, session, now, fake):
    import json

    from sqlalchemy import select

    from calendar_app.cli import main
    from calendar_app.models import Source
    from tests.support.helpers import add_person

    add_person(session, now)
    result = app.test_cli_runner().invoke(
        main,
        ["source", "add", "--person", PNR, "--adapter", "rivta", "--url", fake.url,
         "--unit", "Vårdcentralen Teleborg", "--logical-address", FACILITY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    source = session.scalars(select(Source).where(Source.adapter == "rivta")).one()
    settings = json.loads(source.settings)
    session.commit()
    assert (settings["logical_address"], settings["healthcare_facility"]) == (FACILITY, FACILITY)
    assert fake.url not in source.settings + source.secrets and PNR not in result.output

    refused = app.test_cli_runner().invoke(
        main,
        ["source", "add", "--person", PNR, "--adapter", "rivta", "--url", fake.url,
         "--unit", "Vårdcentralen Teleborg", "--name", "annan", "--logical-address", "fel id"],
    )  # fmt: skip
    assert refused.exit_code != 0 and "rivta.address" in refused.output
