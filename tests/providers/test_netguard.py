"""A user's calendar address reaches only public addresses, unless an administrator allowed
the host: checked after DNS, on every redirect and on the connection itself."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import requests
import urllib3.util.connection
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from calendar_app.providers import ProviderError, netguard
from calendar_app.providers.ics_url import fetch
from calendar_app.providers.netguard import (
    PUBLIC_ONLY,
    AddressBlocked,
    AddressPolicy,
    blocked_reason,
    check_url,
    guarded_session,
)
from tests.support.helpers import event, vcalendar

CALENDAR = vcalendar(event("a", ":20261202T090000Z", ":20261202T100000Z", summary="Samtal"))
LOOPBACK_NAMES = {"127.0.0.1", "::1", "localhost", "rebind.example"}


@pytest.fixture(autouse=True)
def only_loopback_is_ever_dialled(monkeypatch):
    """A safety net: if a guard failed, the test fails instead of dialling out."""
    real = urllib3.util.connection.create_connection

    def create_connection(address, *args, **kwargs):
        assert address[0] in LOOPBACK_NAMES, f"tried to connect to {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "fe80::1",
        "fd00:ec2::254",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::7f00:1",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "2001:0:4136:e378::1",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "192.0.0.192",
        "198.18.0.1",
        "192.0.2.1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "240.0.0.1",
        "fec0::1",
    ],
)
def test_a_loopback_private_link_local_or_metadata_address_is_blocked(address):
    assert blocked_reason(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_a_public_address_is_allowed(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cal.ics",
        "http://[::1]:8080/cal.ics",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:5000/",
        "http://2130706433/",  # 127.0.0.1 written as one number
        "http://127.1/",
        "http://localhost/cal.ics",
        "https://LOCALHOST/cal.ics",
    ],
)
def test_an_address_that_is_or_resolves_to_a_local_one_is_refused(url):
    with pytest.raises(ProviderError) as refused:
        check_url(url, PUBLIC_ONLY)
    assert refused.value.code == "source.address_blocked"
    assert refused.value.message == netguard.BLOCKED_MESSAGE


def test_a_public_address_passes_the_check():
    check_url("https://8.8.8.8/cal.ics", PUBLIC_ONLY)
    check_url("https://[2001:4860:4860::8888]/cal.ics", PUBLIC_ONLY)


def test_a_host_the_administrator_allowed_passes_whatever_it_resolves_to():
    policy = AddressPolicy.from_setting("localhost, 10.0.0.5  [fd00::1]")

    check_url("http://localhost:8080/cal.ics", policy)
    check_url("http://LOCALHOST./cal.ics", policy)
    check_url("http://10.0.0.5/cal.ics", policy)
    check_url("http://[fd00:0::1]/cal.ics", policy)
    with pytest.raises(ProviderError, match="source.address_blocked"):
        check_url("http://127.0.0.1/cal.ics", policy)  # allowed by name, not by address


def test_one_private_address_among_public_ones_is_enough_to_refuse(monkeypatch):
    answers = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")]
    monkeypatch.setattr(netguard, "_resolve", lambda host, port: answers)

    with pytest.raises(ProviderError, match="source.address_blocked"):
        check_url("https://calendar.example/cal.ics", PUBLIC_ONLY)


def test_a_name_that_does_not_resolve_is_unreachable(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)

    with pytest.raises(ProviderError) as refused:
        check_url("https://calendar.example/cal.ics", PUBLIC_ONLY)
    assert refused.value.code == "source.unreachable"


def test_an_address_without_a_host_or_with_a_bad_port_is_refused():
    with pytest.raises(ProviderError, match="source.url"):
        check_url("http:///cal.ics", PUBLIC_ONLY)
    with pytest.raises(ProviderError, match="source.url"):
        check_url("http://calendar.example:99999/", PUBLIC_ONLY)


def test_the_setting_accepts_names_and_ip_literals_and_refuses_anything_else():
    policy = AddressPolicy.from_setting(" Intern.Region.SE,10.0.0.5\n[::1] ")
    assert policy.allowed_hosts == frozenset({"intern.region.se", "10.0.0.5", "::1"})
    assert AddressPolicy.from_setting("").allowed_hosts == frozenset()
    assert AddressPolicy(frozenset({"LOCALHOST."})).allows("localhost")
    for bad in ("https://intern.region.se/", "intern.region.se:8443", "10.0.0.0/8"):
        with pytest.raises(ValueError, match="SOURCE_ALLOWED_HOSTS"):
            AddressPolicy.from_setting(bad)


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Server:
    """A calendar server on loopback whose redirects lead elsewhere on this machine."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.port = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.seen.append(request.path)
        response = self.answer(request)
        return response(environ, start_response)

    def answer(self, request: Request) -> Response:
        targets = {
            "/to-localhost": f"http://localhost:{self.port}/cal.ics",
            "/to-mapped": f"http://[::ffff:127.0.0.1]:{self.port}/cal.ics",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-webcal-metadata": "webcal://169.254.169.254/cal.ics",
        }
        if request.path in targets:
            return Response(status=302, headers={"Location": targets[request.path]})
        if request.path == "/cal.ics":
            return Response(CALENDAR, mimetype="text/calendar")
        return Response(status=404)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    app = Server()
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    app.port = httpd.server_port
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app
    httpd.shutdown()
    thread.join(timeout=10)


def get(url: str, policy: AddressPolicy):
    return fetch(url, default_zone="Europe/Stockholm", max_bytes=100_000, policy=policy)


def test_a_calendar_on_loopback_is_refused_by_default_and_read_once_allowed(server):
    url = f"http://127.0.0.1:{server.port}/cal.ics"
    before = len(server.seen)

    with pytest.raises(ProviderError) as refused:
        fetch(url, default_zone="Europe/Stockholm", max_bytes=100_000)
    assert refused.value.code == "source.address_blocked"
    assert len(server.seen) == before

    read = get(url, AddressPolicy.from_setting("127.0.0.1")).read
    assert read is not None and [b.uid for b in read.bookings] == ["a"]


@pytest.mark.parametrize(
    "path", ["/to-localhost", "/to-mapped", "/to-metadata", "/to-webcal-metadata"]
)
def test_a_redirect_from_an_allowed_host_to_a_blocked_one_is_not_followed(server, path):
    before = len(server.seen)

    with pytest.raises(ProviderError) as refused:
        get(f"http://127.0.0.1:{server.port}{path}", AddressPolicy.from_setting("127.0.0.1"))

    assert refused.value.code == "source.address_blocked"
    assert server.seen[before:] == [path]  # the target was never asked


@pytest.fixture
def rebinding(monkeypatch):
    """rebind.example looks public to the check but the connection lands on loopback."""
    monkeypatch.setattr(netguard, "_resolve", lambda host, port: [ipaddress.ip_address("8.8.8.8")])
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real("127.0.0.1" if host == "rebind.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_rebinds_to_loopback_after_the_check_is_stopped_at_connect(
    server, rebinding, scheme
):
    before = len(server.seen)

    with pytest.raises(ProviderError) as refused:
        get(f"{scheme}://rebind.example:{server.port}/cal.ics", PUBLIC_ONLY)

    assert refused.value.code == "source.address_blocked"
    assert len(server.seen) == before  # nothing was sent, not even a TLS hello


def test_the_guarded_session_raises_address_blocked_through_requests_wrapping(server):
    url = f"http://127.0.0.1:{server.port}/cal.ics"
    with guarded_session(PUBLIC_ONLY) as session, pytest.raises(AddressBlocked) as refused:
        session.get(url, timeout=5)
    assert isinstance(refused.value, requests.ConnectionError)
    assert refused.value.reason == "loopback" and refused.value.address == "127.0.0.1"

    with guarded_session(AddressPolicy.from_setting("127.0.0.1")) as session:
        assert session.get(url, timeout=5).status_code == 200


def test_the_guarded_session_ignores_proxies_and_netrc_from_the_environment():
    session = guarded_session(PUBLIC_ONLY)
    assert session.trust_env is False
    with session, pytest.raises(requests.exceptions.ProxyError):
        session.get("http://8.8.8.8/", proxies={"http": "http://127.0.0.1:9"}, timeout=1)


def test_urllib3_log_lines_of_a_guarded_session_hide_the_path(server, caplog):
    url = f"http://127.0.0.1:{server.port}/cal.ics?token=s3cret"
    caplog.set_level(logging.DEBUG, logger="urllib3")

    with guarded_session(AddressPolicy.from_setting("127.0.0.1")) as session:
        session.get(url, timeout=5).close()

    assert any("127.0.0.1" in r.getMessage() for r in caplog.records)
    assert not any(
        "s3cret" in r.getMessage() or "cal.ics" in r.getMessage() for r in caplog.records
    )
