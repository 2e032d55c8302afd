"""Fuzzing /api/v1 from its own OpenAPI document: no request, from any role, gets a 5xx.

Schemathesis turns /api/v1/openapi.json into generators of valid and invalid requests;
Hypothesis draws EXAMPLES of them per operation from a fixed SEED, so what fails on CI fails
the same way on a laptop. Every drawn request is sent once per role (generating is the slow
part, so it is done once). Generated ids are nearly always unknown (404), so in about half
of the requests the ids in the path are the world's real ones: then the garbage bodies and
query strings reach the code behind the lookups and the access check.

Each operation is a test of its own, so the workers share them; each worker builds one app
and one world for the operations it runs. The fuzz runs on PostgreSQL, the production
database: its types are the stricter (string lengths, 32-bit ids, no NUL in text), so a
request that only PostgreSQL would refuse with a 500 is found here.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hypothesis
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation, BaseSchema

from calendar_app import create_app
from calendar_app.clock import FrozenClock
from calendar_app.services import tokens
from calendar_app.services.calendar import CACHE as calendar_cache
from tests.conftest import NOW, _empty_tables, isolated_url
from tests.support.world import World, build_world, log_in

SEED = 20261123
EXAMPLES = 50  # per operation; each is sent as every role

HeadersFactory = Callable[[Flask, World], dict[str, str]]


def session_cookie(username: str) -> HeadersFactory:
    """Sign in through the login form; the session cookie then goes out as a header."""

    def headers(app: Flask, world: World) -> dict[str, str]:
        client = app.test_client()
        log_in(client, username)
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        assert cookie is not None, f"{username} got no session cookie"
        return {"Cookie": f"{cookie.key}={cookie.value}"}

    return headers


def api_token(app: Flask, world: World) -> dict[str, str]:
    """A provider system's token for the related unit, with every scope."""
    with app.app_context():
        session = app.extensions["session_factory"]()
        try:
            made = tokens.create_token(
                session,
                name="Fuzz",
                provider_id=world.unit_a,
                scopes=list(tokens.SCOPES),
                created_by="test",
                now=app.extensions["clock"].now(),
            )
        finally:
            session.close()
    return {"Authorization": f"Bearer {made.secret}"}


# Role -> the headers that authenticate it. A role with headers sends only its own
# credentials; one without sends whatever schemathesis makes up from the document's
# security schemes (nothing, a forged session cookie or a forged bearer token).
ROLES: dict[str, HeadersFactory] = {
    "anonymous": lambda app, world: {},
    "person": session_cookie("person"),
    "helper_full": session_cookie("helper_full"),
    "caregiver": session_cookie("caregiver"),
    "caregiver_unrelated": session_cookie("caregiver_unrelated"),
    "admin": session_cookie("admin"),
    "api_token": api_token,
}

# Path parameter -> ids that exist in the world.
REAL_IDS: dict[str, Callable[[World], list[int]]] = {
    "person_id": lambda w: [w.person_id, w.other_person_id],
    "provider_id": lambda w: [w.unit_a, w.unit_b, w.unit_c],
    "booking_id": lambda w: [w.native_booking, w.booking_a],
}

# Headers that carry credentials, for the session cookie and the bearer token schemes.
CREDENTIAL_HEADERS = {"authorization", "cookie"}

# Bodies and content types must match the document where it describes them. Status code
# conformance is left out: the document does not list every status the API answers with
# (404 for an unknown person or booking is missing from ten operations).
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def cases(operation: APIOperation, world: World) -> st.SearchStrategy[Case]:
    """Valid and invalid requests; in about half of them the ids in the path are real."""
    generated = st.one_of(
        operation.as_strategy(generation_mode=mode)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )
    names = [parameter.name for parameter in operation.path_parameters]
    if not names:
        return generated
    # Ids the world has none of (a reminder rule) stay as generated.
    real = st.fixed_dictionaries(
        {name: st.sampled_from(REAL_IDS[name](world)) for name in names if name in REAL_IDS}
    )
    return st.builds(with_ids, generated, st.none() | real)


def with_ids(case: Case, ids: dict[str, int] | None) -> Case:
    """The case with `ids` in its path, or as generated when there are none."""
    if ids is not None:
        case.path_parameters = {**case.path_parameters, **ids}
    return case


def without_credentials(case: Case) -> Case:
    """The case without the cookies and credential headers schemathesis made up."""
    kept = {k: v for k, v in case.headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    return case.derive(headers=CaseInsensitiveDict(kept), cookies={})


class LoggedErrors(logging.Handler):
    """Keeps the exceptions the application logs when it answers 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.exceptions: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])

    def where(self) -> str:
        """The calendar_app frames of the last logged exception, and its message."""
        if not self.exceptions:
            return "    (no exception logged)"
        exc = self.exceptions[-1]
        frames = [
            f"    {frame.filename.rsplit('/calendar_app/', 1)[-1]}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(exc.__traceback__)
            if "/calendar_app/" in frame.filename
        ]
        message = str(exc).splitlines()[0] if str(exc) else ""
        return "\n".join([*frames, f"    {type(exc).__name__}: {message}"])


class Sender:
    """Sends one case as every role and tells what went wrong, if anything."""

    def __init__(self, app: Flask, credentials: dict[str, dict[str, str]]) -> None:
        self.credentials = credentials
        # A client without a cookie jar sends the Cookie header as given; the anonymous
        # role gets schemathesis' own client, which sets the cookies it generated.
        self.client: FlaskClient = app.test_client(use_cookies=False)
        self.logged = LoggedErrors()
        app.logger.addHandler(self.logged)

    def send(self, case: Case) -> None:
        """Send `case` as every role; fail naming the roles that got each problem."""
        roles_by_problem: dict[str, list[str]] = {}
        for role in self.credentials:
            problem = self.send_as(role, case)
            if problem is not None:
                roles_by_problem.setdefault(problem, []).append(role)
        if roles_by_problem:
            raise AssertionError(
                "\n\n".join(
                    f"as {', '.join(roles)}: {problem}"
                    for problem, roles in roles_by_problem.items()
                )
            )

    def send_as(self, role: str, case: Case) -> str | None:
        """Send `case` with the role's credentials; what the checks found, or None."""
        headers = self.credentials[role]
        if headers:
            case = without_credentials(case)
        self.logged.exceptions.clear()
        response = case.call(session=self.client if headers else None, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as failures:
            return f"{failures.message}\n  raised at:\n{self.logged.where()}"
        return None


def fuzz(strategy: st.SearchStrategy[Case], send: Callable[[Case], None]) -> None:
    """Run `send` on EXAMPLES cases from `strategy`: the same ones on every run."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no example database: the seed alone decides what runs
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
        # Schemathesis' generators are slow on a busy 2-core runner; speed is not under test.
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.seed(SEED)
    @hypothesis.given(strategy)
    def run(case: Case) -> None:
        send(case)

    run()


def describe(exc: BaseException) -> str:
    """The message, or the messages of each distinct failure Hypothesis found."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n\n".join(describe(inner) for inner in exc.exceptions)
    return str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"


def operations(schema: BaseSchema) -> Iterator[APIOperation]:
    """Every operation in the document; one it cannot read fails the test."""
    for result in schema.get_all_operations():
        yield result.ok()


def _document(app: Flask) -> BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _operation_labels() -> list[str]:
    """The operations of the document, read once at collection (the app builds it)."""
    app = create_app({"DATABASE_URL": "sqlite://"})
    try:
        return [operation.label for operation in operations(_document(app))]
    finally:
        app.extensions["feed_renderer"].stop()
        app.extensions["engine"].dispose()


@dataclass
class Target:
    world: World
    sender: Sender
    operations: dict[str, APIOperation]


@pytest.fixture(scope="module")
def target(database_url, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One app, one world and every role's credentials for the operations this worker runs."""
    folder = tmp_path_factory.mktemp("fuzz")
    url = isolated_url(database_url, folder)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            # A limit this high still runs the rate limiter on every call, but never answers
            # 429 in place of the handler (each account calls hundreds of times).
            "RATELIMIT_API": "1000000 per minute",
        },
        clock=FrozenClock(NOW),
    )
    app.instance_path = str(folder)
    calendar_cache.clear()  # a test database reuses ids that another test used
    try:
        with app.extensions["session_factory"]() as session:
            world = build_world(session, NOW)
            session.commit()
        sender = Sender(app, {role: headers(app, world) for role, headers in ROLES.items()})
        yield Target(world, sender, {op.label: op for op in operations(_document(app))})
    finally:
        app.extensions["feed_renderer"].stop()
        if url.get_backend_name() == "postgresql":
            _empty_tables(app)
        app.extensions["engine"].dispose()


@pytest.mark.databases("postgresql")
@pytest.mark.parametrize("label", _operation_labels())
def test_fuzzed_requests_get_no_server_error_whoever_sends_them(label: str, target: Target):
    try:
        fuzz(cases(target.operations[label], target.world), target.sender.send)
    except Exception as exc:
        pytest.fail(f"{label}\n{describe(exc)}", pytrace=False)
