"""The ICS/webcal URL adapter against a local HTTP server: conditional GET, gzip, size cap,
redirects, timeouts, and pages that are not calendars."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from calendar_app.providers import ProviderError
from calendar_app.providers.ics_url import fetch, http_url
from calendar_app.providers.netguard import PUBLIC_ONLY, AddressPolicy
from tests.support.helpers import event, vcalendar

# The test server is on loopback, which only an administrator's allow-list opens.
LOCAL = AddressPolicy(frozenset({"127.0.0.1"}))
CALENDAR = vcalendar(event("a", ":20261202T090000Z", ":20261202T100000Z", summary="Samtal"))
ETAG = '"v1"'
BASIC = "Basic " + base64.b64encode(b"alva:hemligt").decode()


def drip() -> Iterator[bytes]:
    """A body that never ends, each byte well within any per-read timeout."""
    yield b"BEGIN:VCALENDAR\r\n"
    for _ in range(200):
        time.sleep(0.05)
        yield b"X"


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Provider:
    """A provider's calendar server; each path answers as the tests need."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.seen.append(dict(request.headers))
        response = self.answer(request)
        return response(environ, start_response)

    def answer(self, request: Request) -> Response:
        path = request.path
        if path == "/cal.ics":
            if request.headers.get("If-None-Match") == ETAG:
                return Response(status=304)
            return Response(CALENDAR, mimetype="text/calendar", headers={"ETag": ETAG})
        if path == "/gzip.ics":
            return Response(
                gzip.compress(CALENDAR),
                mimetype="text/calendar",
                headers={"Content-Encoding": "gzip"},
            )
        if path == "/moved":
            return Response(status=302, headers={"Location": "/cal.ics"})
        if path == "/loop":
            return Response(status=302, headers={"Location": "/loop"})
        if path == "/login":
            return Response("<!doctype html><title>Logga in</title>", mimetype="text/html")
        if path == "/broken":
            return Response("oops", status=503)
        if path == "/slow":
            time.sleep(2)
            return Response(CALENDAR, mimetype="text/calendar")
        if path == "/private":
            if request.headers.get("Authorization") != BASIC:
                return Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cal"'})
            return Response(CALENDAR, mimetype="text/calendar")
        if path == "/private-moved":
            return Response(status=302, headers={"Location": "/private"})
        if path == "/away":
            port = request.host.rsplit(":", 1)[1]
            return Response(status=302, headers={"Location": f"http://localhost:{port}/cal.ics"})
        if path == "/drip":
            return Response(drip(), mimetype="text/calendar")
        if path == "/big.ics":
            return Response(b"BEGIN:VCALENDAR\r\n" + b"X" * 300_000, mimetype="text/calendar")
        return Response(status=404)


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, Provider]]:
    app = Provider()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=10)


def get(url: str, **kw):
    kw.setdefault("policy", LOCAL)
    return fetch(url, default_zone="Europe/Stockholm", max_bytes=100_000, **kw)


def test_a_calendar_is_read_and_an_unchanged_one_costs_one_304(provider):
    base, app = provider
    first = get(f"{base}/cal.ics")
    assert [b.uid for b in first.read.bookings] == ["a"] and first.etag == ETAG

    again = get(f"{base}/cal.ics", etag=first.etag)

    assert again.read is None and again.etag == ETAG
    assert app.seen[-1]["If-None-Match"] == ETAG


def test_gzip_redirects_and_webcal_addresses_are_followed(provider):
    base, _ = provider
    assert get(f"{base}/gzip.ics").read.bookings
    assert get(f"{base}/moved").read.bookings
    assert http_url("webcal://kalender.example.se/a.ics") == "https://kalender.example.se/a.ics"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/login", "source.not_calendar"),
        ("/broken", "source.http"),
        ("/loop", "source.redirects"),
        ("/big.ics", "ics.too_large"),
        ("/missing.ics", "source.http"),
    ],
)
def test_what_is_not_a_whole_calendar_is_refused_with_a_code(provider, path, code):
    base, _ = provider
    with pytest.raises(ProviderError) as refused:
        get(f"{base}{path}")
    assert refused.value.code == code


def test_a_slow_server_times_out(provider):
    base, _ = provider
    with pytest.raises(ProviderError) as refused:
        get(f"{base}/slow", timeout=0.5)
    assert refused.value.code == "source.timeout"


def test_an_unreachable_server_and_a_bad_address_are_refused():
    from tests.support.oidc_broker import free_port

    with pytest.raises(ProviderError, match="source.unreachable"):
        get(f"http://127.0.0.1:{free_port()}/cal.ics")
    with pytest.raises(ProviderError, match="source.url"):
        get("ftp://example.se/cal.ics")


def test_basic_auth_goes_to_the_calendars_host_and_not_where_it_redirects(provider):
    base, app = provider
    both = AddressPolicy.from_setting("127.0.0.1 localhost")

    assert get(f"{base}/private-moved", auth=("alva", "hemligt"), policy=both).read.bookings
    assert app.seen[-1]["Authorization"] == BASIC
    with pytest.raises(ProviderError, match="source.auth"):
        get(f"{base}/private")  # without credentials: 401

    get(f"{base}/away", auth=("alva", "hemligt"), policy=both)
    assert app.seen[-2]["Authorization"] == BASIC
    assert "Authorization" not in app.seen[-1]  # localhost is another host


def test_credentials_in_the_address_are_refused_and_never_repeated(provider):
    base, _ = provider
    with pytest.raises(ProviderError) as refused:
        get(base.replace("http://", "http://alva:hemligt@") + "/cal.ics")
    assert refused.value.code == "source.url"
    assert "hemligt" not in str(refused.value) and "user name and password" in str(refused.value)


def test_no_refusal_repeats_the_secret_part_of_the_address(provider):
    from tests.support.oidc_broker import free_port

    secret = "private-0123abcdef"
    cases = [
        (f"{provider[0]}/{secret}/basic.ics", LOCAL, "source.http"),
        (f"{provider[0]}/{secret}/basic.ics", PUBLIC_ONLY, "source.address_blocked"),
        (f"http://127.0.0.1:{free_port()}/{secret}/basic.ics", LOCAL, "source.unreachable"),
        (f"ftp://example.se/{secret}/basic.ics", LOCAL, "source.url"),
    ]
    for url, policy, code in cases:
        with pytest.raises(ProviderError) as refused:
            get(url, policy=policy)
        assert refused.value.code == code
        assert secret not in str(refused.value)


def test_a_server_that_drips_its_body_is_cut_off_at_three_timeouts(provider):
    base, _ = provider
    started = time.monotonic()

    with pytest.raises(ProviderError) as refused:
        get(f"{base}/drip", timeout=0.2)

    assert refused.value.code == "source.timeout"
    assert time.monotonic() - started < 1.5


@pytest.fixture
def header_dripper() -> Iterator[str]:
    """A server that sends one more header line every 50 ms and never ends them."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.wait(0.05):
                    conn.sendall(b"X-Drip: a\r\n")
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_server_that_drips_its_headers_is_cut_off_at_three_timeouts(header_dripper):
    started = time.monotonic()

    with pytest.raises(ProviderError) as refused:
        get(f"{header_dripper}/cal.ics", timeout=0.2)

    assert refused.value.code == "source.timeout"
    assert time.monotonic() - started < 1.5
