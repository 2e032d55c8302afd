"""Unit tests: the rules on their own (domain, configuration, the code's own discipline).

No database and no app fixture here: a test that needs one belongs in ``service/`` or
``web/``. The guard below says so instead of letting it quietly start one.
"""

from __future__ import annotations

import pytest

NEEDS_A_DATABASE = {"database_url", "app", "client", "session", "world", "live_server"}


@pytest.fixture(autouse=True)
def _without_a_database(request: pytest.FixtureRequest) -> None:
    used = NEEDS_A_DATABASE & set(request.fixturenames)
    if used:
        pytest.fail(f"a unit test uses {sorted(used)}: move it to tests/service or tests/web")
