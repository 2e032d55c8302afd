"""The local Twilio API (Prism serving Twilio's own OpenAPI description, which checks
every request the real client sends) and a small fake that answers Twilio's errors."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from tests.support.feeds import serving
from tests.support.oidc_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json"
PRISM = ROOT / ".tools" / "prism" / "node_modules" / ".bin" / "prism"
ACCOUNT = "AC" + "0" * 32
TOKEN = "test-auth-token"


@contextmanager
def running_prism() -> Iterator[str]:
    """Prism on a free port with generated values (-d), so every message has its own SID."""
    if not PRISM.exists():
        if os.environ.get("CI"):
            pytest.fail("Prism is missing: scripts/ensure-test-env.sh installs it")
        pytest.skip("Prism is not installed (make test installs it)")
    port = free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "-d", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # loading Twilio's spec takes 10-20 s
        while True:
            try:
                httpx.get(f"{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("Prism did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


class TwilioErrors:
    """Answers POST .../Messages.json with the status and Twilio error code set on it."""

    def __init__(self) -> None:
        self.status = 400
        self.code: int | None = 21211
        self.requests: list[dict[str, str]] = []

    def __call__(self, environ, start_response):  # a WSGI app
        request = Request(environ)
        self.requests.append(request.form.to_dict())
        body = {"code": self.code, "message": "refused by the fake", "status": self.status}
        response = Response(json.dumps(body), status=self.status, mimetype="application/json")
        return response(environ, start_response)


@contextmanager
def running_fake(fake: TwilioErrors) -> Iterator[str]:
    with serving(fake) as origin:
        yield origin
