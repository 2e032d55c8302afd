"""The read-only JSON API under /api/v1, with its OpenAPI document.

Errors are ``{"error": {"code": "...", "message": "..."}}`` with a stable code.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from calendar_app.db import now_utc
from calendar_app.domain.errors import DomainError
from calendar_app.services import calendar as calendar_service
from calendar_app.services.access import AccessDenied
from calendar_app.web import db
from calendar_app.web.auth import current_actor
from calendar_app.web.openapi import document

bp = Blueprint("api", __name__, url_prefix="/api/v1")

STATUS_FOR = {"access.denied": 403, "auth.required": 401}


def error(code: str, message: str, status: int = 400) -> Any:
    """A JSON error response with a stable code."""
    return jsonify({"error": {"code": code, "message": message}}), status


@bp.before_request
def _require_login() -> Any:
    if request.endpoint == "api.openapi":
        return None
    if g.user is None:
        return error("auth.required", "sign in first", 401)
    return None


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Any:
    status = STATUS_FOR.get(exc.code, 404 if exc.code.endswith("not_found") else 400)
    return error(exc.code, exc.message, status)


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(document())


def _day(name: str) -> date:
    value = request.args.get(name)
    if not value:
        raise DomainError("range.missing", f"query parameter '{name}' (YYYY-MM-DD) is required")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("range.date_format", f"'{name}' must be a date as YYYY-MM-DD") from None


@bp.get("/people/<int:person_id>/calendar")
def calendar(person_id: int) -> ResponseReturnValue:
    """The merged calendar for [from, to) in the person's zone."""
    first, end = _day("from"), _day("to")
    try:
        view = calendar_service.read_calendar(
            db(),
            current_actor(),
            person_id,
            first,
            end,
            now=now_utc(),
            max_days=current_app.config["MAX_QUERY_DAYS"],
        )
    except AccessDenied as exc:
        db().rollback()
        return error(exc.code, exc.message, 403)
    zone = ZoneInfo(view.timezone)
    return jsonify(
        {
            "person_id": view.person_id,
            "timezone": view.timezone,
            "from": first.isoformat(),
            "to": end.isoformat(),
            "occurrences": [calendar_service.occurrence_json(o, zone) for o in view.occurrences],
        }
    )


@bp.get("/me")
def me() -> ResponseReturnValue:
    """Who is signed in."""
    user = g.user
    return jsonify(
        {"username": user.username, "role": user.role.value, "person_id": user.person_id}
    )
