"""Browser tests: Debian's headless Chromium driven by Playwright, started once per worker.

Each test gets a fresh browser context (its own cookies and storage) and a page in it;
a console error on the page (a CSP violation, a failed script) fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test (``-m "not browser"`` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


def _real_clock_environment() -> dict[str, str]:
    """This process's environment without libfaketime: the browser keeps the real clock, as
    a person's phone does (make test-any-date moves only the service's processes)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name != "LD_PRELOAD" and not name.startswith("FAKETIME")
    }


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One Chromium for this worker's browser tests."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: scripts/ensure-test-env.sh installs it")
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=LAUNCH_ARGS,
            env=_real_clock_environment(),
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A page in a context of its own, 1280 px wide; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    refused: list[str] = []  # which addresses failed, since the console does not say
    tab = context.new_page()
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on(
        "response",
        lambda r: (
            refused.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None
        ),
    )
    yield tab
    context.close()
    assert errors == [], f"the browser reported errors (e.g. CSP violations): {errors} {refused}"
