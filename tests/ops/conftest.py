"""Operations tests: real processes (``calendar-app`` commands, schedulers, gunicorn),
migrations and backups, logs and metrics: the service as a county runs it.

Real processes have only the system clock, so the tests that start them build their world
at ``SystemClock().now()`` (under libfaketime in CI, the test and its processes share the
moved clock)."""

from __future__ import annotations

import pytest


@pytest.fixture
def url(app) -> str:
    """The app fixture's own database, for the processes the test starts to share."""
    return str(app.config["DATABASE_URL"].render_as_string(hide_password=False))
