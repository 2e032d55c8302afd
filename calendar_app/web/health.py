"""Health for load balancers, systemd and containers: liveness, readiness, and the older
``/healthz``.

``/livez`` says the process answers (restart it if not); it touches no database, so a
database outage never has every worker restarted. ``/readyz`` says the worker can serve:
the database answers and its schema is at the Alembic head this code expects (read once
at start-up); otherwise 503 with a short reason, and the balancer sends traffic elsewhere.
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from calendar_app.metrics import code_schema, schema_state
from calendar_app.web import db

bp = Blueprint("health", __name__)

# Probes are polled every few seconds: no cache may answer for the process.
NO_STORE = {"Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    """Register the probes; read the schema head the code expects, once per process."""
    code_schema()
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """``{"status": "ok"}`` when the database answers, 503 otherwise."""
    try:
        db().execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify({"status": "error", "database": "unreachable"}), 503
    return jsonify({"status": "ok"})


@bp.get("/livez")
def livez() -> ResponseReturnValue:
    """The process answers requests (no database)."""
    return jsonify({"status": "ok"}), 200, NO_STORE


REASONS = {
    "behind": "schema behind: run `calendar-app init-db`",
    "unknown": "schema revision unknown to this code (newer code migrated it?)",
    "missing": "no schema: run `calendar-app init-db`",
}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready to serve: the database answers and its schema is at the expected head."""
    try:
        state = schema_state(db().connection())
    except SQLAlchemyError:
        return jsonify({"status": "error", "reason": "database unreachable"}), 503, NO_STORE
    if state.status != "ok":
        body = {
            "status": "error",
            "reason": REASONS[state.status],
            "schema": ",".join(state.current),
            "expected": ",".join(state.expected),
        }
        return jsonify(body), 503, NO_STORE
    return jsonify({"status": "ok", "schema": ",".join(state.current)}), 200, NO_STORE
