"""A real OpenID Connect provider (oidc-provider-mock) in its own process, as the
county's identity broker stands in front of the service in production."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
STAFF_CLAIM = "employeeHsaId"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_broker() -> Iterator[str]:
    """Start the provider on a free port; yield its issuer URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "oidc_provider_mock",
            "--port",
            str(port),
            "--require-nonce",
            "true",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the OIDC provider did not start")
            time.sleep(0.1)
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)


def set_claims(issuer: str, sub: str, claims: dict[str, object]) -> None:
    """Tell the provider what it says about ``sub`` (an opaque id, never a personnummer)."""
    response = httpx.put(f"{issuer}/users/{quote(sub)}", json=claims)
    assert response.status_code == 204, response.text


def sign_in(client, issuer: str, sub: str, *, deny: bool = False, next_path: str = "/"):
    """Walk the authorization-code flow: our app -> the provider's form -> our callback.

    Returns (our callback's response, every URL the browser would have visited).
    """
    start = client.post("/login/e-legitimation", data={"next": next_path})
    assert start.status_code == 302, start.get_data(as_text=True)[:300]
    authorize_url = start.location
    assert authorize_url.startswith(issuer)
    form = {"action": "deny"} if deny else {"sub": sub}
    answer = httpx.post(authorize_url, data=form)
    assert answer.status_code == 302, answer.text[:300]
    callback_url = answer.headers["location"]
    callback = client.get(callback_url)
    return callback, [authorize_url, callback_url, callback.location or ""]
