"""Provider tests: each adapter against a real local counterpart (Radicale, a FHIR server
serving HL7's examples, a RIV-TA producer checking the XSDs, Prism serving Twilio's own
OpenAPI document, an HTTP server for calendar URLs) and the real-world files of the corpus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.feeds import FeedServer, feed_server
from tests.support.twilio_local import running_prism


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    """A provider's calendar server on 127.0.0.1, shared by the module's tests."""
    with feed_server() as server:
        yield server


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    """The local Twilio API (Prism serving Twilio's own OpenAPI document)."""
    with running_prism() as base:
        yield base
