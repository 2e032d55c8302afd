"""What every layer of the suite shares: clock -> app -> client, a database per backend,
the live server, and the corpus paths.

The layers, each a folder with its own conftest:

* ``unit/``: pure rules (domain, config): no database, no app.
* ``service/``: use cases on a real database, no HTTP.
* ``web/``: pages and the JSON API through Flask's test client.
* ``providers/``: adapters against real local servers (Radicale, FHIR, RIV-TA, Twilio's API,
  calendar files and URLs, the corpus).
* ``browser/``: Debian's headless Chromium driven by Playwright.
* ``ops/``: real processes, migrations, backups, logs and metrics, the CLI.

**The clock.** The app's clock is frozen at ``NOW`` (a test may move it with ``set`` or
``advance``, or override the ``clock`` fixture): no test depends on the day it runs. Tests
that start real processes (schedulers, gunicorn) build their world at the system clock's
now instead, since those processes have no other clock.

**The backends.** A test that uses the database runs on SQLite, the embedded default: each
test gets a private copy of a migrated file, so it is fast and isolated, and pages and rules
do not depend on the SQL dialect. A test whose behaviour does (storage, migrations, locking
and claims, concurrency, upserts, statements of our own) is marked
``@pytest.mark.databases("sqlite", "postgresql")`` and runs on both; the API fuzz is marked
``databases("postgresql")``, the production database, whose types are the stricter.
PostgreSQL needs ``TEST_DATABASE_URL`` (``make test`` sets it; on CI it must be set).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from calendar_app import create_app
from calendar_app.clock import FrozenClock
from calendar_app.db import Base
from calendar_app.demo import load_demo
from calendar_app.migrations import upgrade
from calendar_app.services.calendar import CACHE as calendar_cache
from tests.support.feeds import serving
from tests.support.world import World, build_world

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
ICS = CORPUS / "ics"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday: where the app's clock stands

BACKENDS = ["sqlite", "postgresql"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default=",".join(BACKENDS),
        help="run only on these of the backends a test asks for (comma-separated)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "databases(*backends): run on these backends (default: sqlite); see tests/conftest.py",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every test that uses the database its backends (see the module docstring)."""
    if "database_url" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("databases")
    wanted = list(marker.args) if marker else ["sqlite"]
    unknown = set(wanted) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no backend {sorted(unknown)}")
    allowed = metafunc.config.getoption("databases").split(",")
    backends = [b for b in wanted if b in allowed]
    metafunc.parametrize("database_url", backends, indirect=True, scope="session")


# Almost every test builds its own app, and werkzeug compiles two URL builders per rule
# for each new app (Python source through ast and compile: about 70 ms an app, a few
# minutes over the suite). A builder depends only on the rule's text, its parsed parts and
# its defaults, so one compiled per rule serves every app of the test session; it is
# bound to each app's own Rule as before.
_builders: dict[tuple[object, ...], Callable[..., tuple[str, str]]] = {}
_compile_builder = Rule._compile_builder


def _shared_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    key = (
        self.rule,
        self.subdomain,
        self.host,
        tuple(self._trace),
        repr(sorted((self.defaults or {}).items())),
        append_unknown,
    )
    if key not in _builders:
        _builders[key] = _compile_builder(self, append_unknown)
    return _builders[key]


Rule._compile_builder = _shared_builder  # type: ignore[method-assign]


def _pg_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url and os.environ.get("CI"):
        pytest.exit("CI must set TEST_DATABASE_URL: the PostgreSQL tests may not skip", 2)
    return url


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A migrated, empty database for this test session, one per backend."""
    if request.param == "sqlite":
        # A migrated template; each test gets its own copy of the file (see `app`).
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        url = make_url(f"sqlite:///{path}")
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    base = _pg_url()
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set (make test sets it)")
    schema = f"pk_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _empty_tables(app: Flask) -> None:
    """Empty a PostgreSQL test schema (TRUNCATE does not fire the audit log's triggers)."""
    engine = app.extensions["engine"]
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def isolated_url(database_url: URL, tmp_path: Path) -> URL:
    """A database for one test: a copy of the SQLite template, or the shared PG schema."""
    if database_url.get_backend_name() == "sqlite":
        copy = tmp_path / "test.sqlite3"
        shutil.copyfile(str(database_url.database), copy)
        return database_url.set(database=str(copy))
    return database_url


@pytest.fixture
def app_config() -> dict[str, object]:
    """Settings a test module adds to the app's (override this fixture)."""
    return {}


@pytest.fixture
def clock() -> FrozenClock:
    """The app's clock, frozen at NOW; move it with ``set``/``advance``."""
    return FrozenClock(NOW)


@pytest.fixture
def app(
    database_url, tmp_path: Path, app_config: dict[str, object], clock: FrozenClock
) -> Iterator[Flask]:
    """The application on the backend under test; its tables are emptied afterwards."""
    url = isolated_url(database_url, tmp_path)
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            **app_config,
        },
        clock=clock,
    )
    application.instance_path = str(tmp_path)
    calendar_cache.clear()  # a test database reuses ids that another test used
    try:
        yield application
    finally:
        # The feed renderer's thread may still hold a connection: let it finish first.
        application.extensions["feed_renderer"].stop()
        if url.get_backend_name() == "postgresql":
            _empty_tables(application)
        application.extensions["engine"].dispose()  # and the feed fetches' pool with it


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    db = app.extensions["session_factory"]()
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def now(clock: FrozenClock) -> datetime:
    """The instant the app's clock stands at when the test starts."""
    return clock.now()


@pytest.fixture
def world(session: Session, now: datetime) -> World:
    """The person and everyone who might look at her calendar (tests/support/world.py)."""
    return build_world(session, now)


# --- The app served for real ------------------------------------------------------------


@pytest.fixture
def live_server(app, session, now) -> Iterator[str]:
    """The app served on a free local port in a background thread, with the demo loaded."""
    load_demo(session, now=now)
    session.commit()
    app.config["WTF_CSRF_ENABLED"] = True  # the browser goes through the real forms
    # With werkzeug's access lines: a test reads them for what they must never quote.
    with serving(app, quiet=False) as origin:
        yield origin
