"""Hardening: size and rate limits, nothing secret in URLs or logs, parameterised SQL."""

from __future__ import annotations

import ast
import logging
import re
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from werkzeug.serving import make_server

from calendar_app.models import Person
from tests.support.world import PASSWORD, build_world, log_in

PACKAGE = Path(__file__).resolve().parents[2] / "calendar_app"


def test_an_api_body_over_the_limit_is_refused_with_a_code(client, session, now):
    world = build_world(session, now)
    log_in(client, "caregiver")
    big = {"date": "2026-12-02", "start": "13:00", "minutes": 30, "note": "x" * 70_000}

    response = client.post(f"/api/v1/people/{world.person_id}/visits", json=big)

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request.too_large"


@pytest.mark.parametrize("app_config", [{"RATELIMIT_LOGIN": "3 per minute"}])
def test_login_attempts_from_one_address_are_rate_limited(client, session, now):
    build_world(session, now)
    for _ in range(3):
        client.post("/login", data={"username": "person", "password": "wrong"})

    limited = client.post("/login", data={"username": "person", "password": PASSWORD})

    assert limited.status_code == 429
    assert "För många försök" in limited.get_data(as_text=True)
    other = client.post(
        "/login",
        data={"username": "person", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other.status_code == 302


@pytest.mark.parametrize("app_config", [{"RATELIMIT_LOGIN": "3 per minute"}])
def test_successful_sign_ins_from_one_address_are_not_rate_limited(app, session, now):
    build_world(session, now)
    for role in ("person", "caregiver", "admin", "helper_full", "helper_busy", "person"):
        assert (
            app.test_client()
            .post("/login", data={"username": role, "password": PASSWORD})
            .status_code
            == 302
        )


@pytest.mark.parametrize("app_config", [{"RATELIMIT_API": "5 per minute"}])
def test_api_calls_are_rate_limited_per_account(app, client, session, now):
    build_world(session, now)
    log_in(client, "person")
    answers = [client.get("/api/v1/me").status_code for _ in range(6)]

    assert answers == [200] * 5 + [429]
    assert client.get("/api/v1/me").get_json()["error"]["code"] == "rate.limited"
    other = app.test_client()
    log_in(other, "caregiver")
    assert other.get("/api/v1/me").status_code == 200


def _forms(pnr: str) -> list[str]:
    """The ways a personnummer can be written: 12 or 10 digits, with or without a dash."""
    return [pnr, pnr[2:], f"{pnr[:8]}-{pnr[8:]}", f"{pnr[2:8]}-{pnr[8:]}"]


def test_no_personnummer_token_or_phone_number_reaches_a_url_or_a_log_line(
    app, session, now, caplog
):
    world = build_world(session, now)
    person = session.get(Person, world.person_id)
    person.phone_e164 = "+46701234567"
    session.commit()
    caplog.set_level(logging.DEBUG)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    urls: list[str] = []

    def record(response: httpx.Response) -> None:
        urls.append(str(response.request.url))
        urls.append(response.headers.get("location", ""))

    secrets: list[str] = [*_forms(world.pnr), "+46701234567", "070-123 45 67", "0701234567"]
    try:
        admin = httpx.Client(base_url=base, event_hooks={"response": [record]})
        admin.post("/login", data={"username": "admin", "password": PASSWORD})
        made = admin.post(
            "/admin/api-tokens",
            data={"name": "Journal", "provider_id": world.unit_a, "scope": "calendar:read"},
        )
        token = re.search(r"pk_[A-Za-z0-9_-]+", made.text).group(0)
        secrets.append(token)
        court = admin.post(
            "/admin/court-helpers",
            data={
                "personnummer": world.pnr,
                "name": "God Man",
                "contact": "070-123 45 67",
                "basis": "god_man",
                "reference": "T 1234-26",
                "view_level": "busy",
            },
        )
        assert court.status_code == 201
        admin.post(
            "/admin/audit-export",
            data={"personnummer": world.pnr, "from": "2026-01-01", "to": "2027-01-01"},
        )
        system = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            event_hooks={"response": [record]},
        )
        calendar = f"/api/v1/people/{world.person_id}/calendar?from=2026-12-01&to=2026-12-08"
        assert system.get(calendar).status_code == 200
        caregiver = httpx.Client(base_url=base, event_hooks={"response": [record]})
        caregiver.post("/login", data={"username": "caregiver", "password": "wrong"})
        caregiver.post("/login", data={"username": "caregiver", "password": PASSWORD})
        busy = caregiver.post(
            "/api/v1/busy",
            json={"personnummer": world.pnr, "from": "2026-12-01", "to": "2026-12-08"},
        )
        assert busy.status_code == 200
        caregiver.post(
            "/api/v1/busy", json={"personnummer": "19900101-0000", "from": "x", "to": "y"}
        )
        person = httpx.Client(base_url=base, event_hooks={"response": [record]})
        person.post("/login", data={"username": "person", "password": PASSWORD})
        secrets.append(person.cookies["session"])
        exported = person.get("/account/export.json")
        assert world.pnr in exported.text  # the person's own copy has it, in the body
        person.get(f"/people/{world.person_id}/week")
        person.post("/logout/everywhere")
    finally:
        server.shutdown()
        thread.join(timeout=10)

    # The service's log lines: everything but this test's own HTTP client.
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert "GET /api/v1/people/" in logged  # the access log was captured
    for secret in secrets:
        assert secret not in logged, f"{secret[:6]}… in the log"
        assert all(secret not in url for url in urls), f"{secret[:6]}… in a URL"


def test_a_database_error_is_logged_without_its_parameters(app, client, session, now, caplog):
    world = build_world(session, now)
    log_in(client, "caregiver")

    def broken_lookup(db, pnr_text, *, today):
        # A query that fails inside the database, with the personnummer as a parameter.
        db.execute(select(Person).where(Person.personnummer == pnr_text, text("no_such_column")))

    import calendar_app.web.api as api

    original = api.find_person
    api.find_person = broken_lookup
    try:
        with caplog.at_level(logging.ERROR):
            response = client.post(
                "/api/v1/busy",
                json={"personnummer": world.pnr, "from": "2026-12-01", "to": "2026-12-08"},
            )
    finally:
        api.find_person = original

    assert response.status_code == 500
    assert "no_such_column" in caplog.text  # the error itself is logged, for the operator
    for form in _forms(world.pnr):
        assert form not in caplog.text


class _BuiltSql(ast.NodeVisitor):
    """Finds SQL text made from anything but a string literal."""

    SQL_CALLS = {"text", "exec_driver_sql", "execute"}

    def __init__(self) -> None:
        self.found: list[int] = []

    def visit_Call(self, node: ast.Call) -> None:
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        if name in self.SQL_CALLS and node.args:
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call)
                and isinstance(first.func, ast.Attribute)
                and first.func.attr in {"format", "join"}
            )
            if built:
                self.found.append(node.lineno)
        self.generic_visit(node)


def test_the_code_builds_no_sql_from_strings():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        visitor = _BuiltSql()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        offenders += [f"{path.relative_to(PACKAGE)}:{line}" for line in visitor.found]
    assert offenders == [], "use select()/bound parameters, not SQL built from strings"


def test_the_sql_check_would_catch_a_query_built_from_strings():
    visitor = _BuiltSql()
    visitor.visit(ast.parse('session.execute(text(f"SELECT * FROM person WHERE name = {x}"))'))
    visitor.visit(ast.parse('conn.exec_driver_sql("DELETE FROM t WHERE id = " + ident)'))
    assert len(visitor.found) == 2
