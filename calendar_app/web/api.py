"""The read-only JSON API under /api/v1, with its OpenAPI document.

Errors are ``{"error": {"code": "...", "message": "..."}}`` with a stable code.
"""

from __future__ import annotations

import math
import re
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from calendar_app.domain.clashes import ClashWarning
from calendar_app.domain.dates import client_day
from calendar_app.domain.errors import DomainError
from calendar_app.models import Role
from calendar_app.services import calendar as calendar_service
from calendar_app.services import preferences
from calendar_app.services import settings as settings_service
from calendar_app.services.access import AccessDenied
from calendar_app.services.audit import read_audit_log
from calendar_app.services.booking import (
    CheckResult,
    Reach,
    book_visit,
    cancel_visit,
    check_visit,
    reach_by_id,
    reach_by_personnummer,
    rebook_visit,
    set_opening_hours,
    suggest_times,
)
from calendar_app.services.directory import find_person
from calendar_app.web import db, now_utc
from calendar_app.web.auth import current_actor
from calendar_app.web.booking import draft_from
from calendar_app.web.messages import suggestion_text
from calendar_app.web.openapi import document

bp = Blueprint("api", __name__, url_prefix="/api/v1")

STATUS_FOR = {
    "access.denied": 403,
    "auth.required": 401,
    "request.json": 415,
    "clash": 409,
    "booking.synced": 409,
    "booking.cancelled": 409,
}


def error(code: str, message: str, status: int = 400) -> Any:
    """A JSON error response with a stable code."""
    return jsonify({"error": {"code": code, "message": message}}), status


# The scope an API token needs for each operation; operations not named here are for
# signed-in people only. "" means any valid token.
TOKEN_SCOPES = {
    "api.me": "",
    "api.calendar": "calendar:read",
    "api.busy": "calendar:read",
    "api.check_proposed_visit": "calendar:read",
    "api.suggest_visits": "calendar:read",
    "api.create_visit": "visits:write",
    "api.rebook": "visits:write",
    "api.cancel": "visits:write",
    "api.put_opening_hours": "units:write",
    "api.put_pushed_booking": "bookings:push",
    "api.cancel_pushed_booking": "bookings:push",
    "api.get_pushed_booking": "bookings:push",
}


@bp.before_request
def _require_login() -> Any:
    request.max_content_length = current_app.config["MAX_API_BODY_BYTES"]
    if (request.content_length or 0) > current_app.config["MAX_API_BODY_BYTES"]:
        return error("request.too_large", "the request body is too large", 413)
    if request.endpoint == "api.openapi":
        return None
    token = g.get("api_token")
    if token is not None:
        needed = TOKEN_SCOPES.get(request.endpoint or "")
        if needed is None or (needed and needed not in token.scopes.split()):
            return error("token.scope", "this API token may not do this", 403)
        return None
    if g.user is None:
        return error("auth.required", "sign in first", 401)
    return None


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Any:
    db().rollback()
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
        day = date.fromisoformat(value)
    except ValueError:
        raise DomainError("range.date_format", f"'{name}' must be a date as YYYY-MM-DD") from None
    return client_day(day, name)


@bp.get("/people/<int:person_id>/calendar")
def calendar(person_id: int) -> ResponseReturnValue:
    """The merged calendar for [from, to) in the person's zone."""
    first, end = _day("from"), _day("to")
    view = calendar_service.read_calendar(
        db(),
        current_actor(),
        person_id,
        first,
        end,
        now=now_utc(),
        max_days=current_app.config["MAX_QUERY_DAYS"],
    )  # access.denied becomes 403 in _domain_error, like every other call here
    zone = ZoneInfo(view.timezone)
    return jsonify(
        {
            "person_id": view.person_id,
            "timezone": view.timezone,
            "from": first.isoformat(),
            "to": end.isoformat(),
            "occurrences": [calendar_service.occurrence_json(o, zone) for o in view.occurrences],
            "source_warnings": [
                {
                    "unit": w.unit,
                    "state": w.state,
                    "since": w.since_utc.astimezone(zone).isoformat() if w.since_utc else None,
                }
                for w in view.source_warnings
            ],
        }
    )


def _json_body(*, texts_checked_here: bool = True) -> dict[str, Any]:
    # Only JSON is accepted: a browser cannot send it cross-site without a CORS preflight,
    # which is why this blueprint needs no CSRF token.
    if not request.is_json:
        raise DomainError("request.json", "send a JSON body (Content-Type: application/json)")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the JSON parser's stack goes
        raise DomainError("request.json", "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise DomainError("request.json", "the body must be a JSON object")
    fault = _body_fault(body)
    if fault:
        raise DomainError("request.json", fault)
    # The push API checks each text itself and names the field (push.text).
    if texts_checked_here and _has_unstorable_text(body):
        raise DomainError(
            "request.text", "a text in the body has control characters or is not valid Unicode"
        )
    return body


# No body of this API nests more than three levels; every check that walks a body (the
# texts' check below, the services' own) may then recurse without a care.
MAX_BODY_DEPTH = 16


def _body_fault(body: Any) -> str | None:
    """What makes a JSON body unusable: nesting deeper than MAX_BODY_DEPTH, or a number
    that is no number (1e400 reads as infinity; NaN). Found level by level, not by
    recursion, which a body nested thousands deep would exhaust."""
    level = [body]
    for _ in range(MAX_BODY_DEPTH):
        if any(isinstance(item, float) and not math.isfinite(item) for item in level):
            return "a number in the body is out of range"
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return None
    return "the body is nested too deeply"


# Control characters other than tab and line breaks; PostgreSQL cannot store U+0000 at all.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _has_unstorable_text(value: Any) -> bool:
    """Whether any string in the JSON value, key or value at any depth, has a control
    character or a lone surrogate ("\\ud800" is valid JSON, but no text a database stores)."""
    if isinstance(value, str):
        return CONTROL_CHARACTERS.search(value) is not None or not _is_unicode(value)
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@bp.get("/people/<int:person_id>/settings")
def settings(person_id: int) -> ResponseReturnValue:
    """The person's consents, care relationships and helpers."""
    view = settings_service.read_settings(db(), current_actor(), person_id, now=now_utc())
    return jsonify(
        {
            "person_id": view.person_id,
            "protected_identity": view.protected_identity,
            "units": [
                {
                    "provider_id": u.provider_id,
                    "name": u.name,
                    "kind": u.kind,
                    "others_level": u.others_level.value,
                    "sensitive": u.sensitive,
                    "care_relationship": u.related,
                }
                for u in view.units
            ],
            "care_relationships": [
                {
                    "id": r.id,
                    "provider_id": r.provider_id,
                    "created_by": r.created_by,
                    "started": r.started_utc.isoformat(),
                    "ended": r.ended_utc.isoformat() if r.ended_utc else None,
                }
                for r in view.relationships
            ],
            "helpers": [
                {
                    "id": h.id,
                    "name": h.helper_name,
                    "basis": h.basis.value,
                    "view_level": h.view_level.value if h.view_level else None,
                    "receives_reminders": h.receives_reminders,
                    "manages_settings": h.manages_settings,
                    "valid_until": h.valid_until.isoformat() if h.valid_until else None,
                    "accepted": h.helper_user_id is not None,
                    "withdrawn": h.withdrawn_utc is not None,
                }
                for h in view.helpers
            ],
        }
    )


@bp.put("/people/<int:person_id>/consents/<int:provider_id>")
def put_consent(person_id: int, provider_id: int) -> ResponseReturnValue:
    """Set what a unit's caregivers see of other units, and whether it is sensitive."""
    body = _json_body()
    sensitive = body.get("sensitive", False)
    if not isinstance(sensitive, bool) or not isinstance(body.get("others_level"), str):
        raise DomainError(
            "consent.level", "give others_level (busy, time_place, full) and sensitive (true/false)"
        )
    consent = settings_service.set_unit_consent(
        db(),
        current_actor(),
        person_id,
        provider_id,
        others_level=body["others_level"],
        sensitive=sensitive,
        now=now_utc(),
    )
    return jsonify(
        {
            "provider_id": provider_id,
            "others_level": consent.others_level.value,
            "sensitive": consent.sensitive,
        }
    )


@bp.get("/people/<int:person_id>/audit")
def audit(person_id: int) -> ResponseReturnValue:
    """Who has seen the person's data in [from, to)."""
    first, end = _day("from"), _day("to")
    rows = read_audit_log(
        db(),
        current_actor(),
        person_id,
        first,
        end,
        now=now_utc(),
        max_days=current_app.config["MAX_QUERY_DAYS"],
    )
    return jsonify(
        [
            {
                "at": r.at_utc.isoformat(),
                "actor": r.actor_label,
                "role": r.actor_role,
                "unit": r.actor_unit,
                "action": r.action,
                "detail": r.detail,
            }
            for r in rows
        ]
    )


@bp.post("/busy")
def busy() -> ResponseReturnValue:
    """A caregiver booking a first visit: when the person is busy (personnummer in the
    body, never in the URL); at most 31 days; audited."""
    body = _json_body()
    try:
        first = date.fromisoformat(str(body.get("from", "")))
        end = date.fromisoformat(str(body.get("to", "")))
    except ValueError:
        raise DomainError("range.date_format", "from and to must be dates as YYYY-MM-DD") from None
    first, end = client_day(first, "from"), client_day(end, "to")
    now = now_utc()
    actor = current_actor()
    if actor.role != Role.CAREGIVER:
        raise AccessDenied()
    person = find_person(db(), str(body.get("personnummer", "")), today=now.date())
    intervals = calendar_service.busy_lookup(db(), actor, person.id, first, end, now=now)
    return jsonify(
        {
            "person_id": person.id,
            "busy": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in intervals],
        }
    )


def _preferences_json(view: preferences.PreferencesView) -> dict[str, Any]:
    return {
        "max_visits_per_day": view.max_visits_per_day,
        "travel_buffer_minutes": view.travel_buffer_minutes,
        "home_address": view.home_address,
        "windows": [
            {
                "kind": w.kind.value,
                "label": w.label,
                "weekdays": [int(d) for d in w.weekdays.split(",")],
                "start": w.start_time.strftime("%H:%M"),
                "end": w.end_time.strftime("%H:%M"),
            }
            for w in view.windows
        ],
    }


@bp.get("/people/<int:person_id>/preferences")
def get_preferences(person_id: int) -> ResponseReturnValue:
    """Times that suit, busy periods, daily maximum, travel buffer, home address."""
    return jsonify(
        _preferences_json(
            preferences.read_preferences(db(), current_actor(), person_id, now=now_utc())
        )
    )


@bp.put("/people/<int:person_id>/preferences")
def put_preferences(person_id: int) -> ResponseReturnValue:
    """Replace the preferences, windows included; a bad value changes nothing."""
    body = _json_body()
    try:
        windows = [
            preferences.WindowInput(
                kind=str(w["kind"]),
                weekdays=tuple(int(d) for d in w["weekdays"]),
                start=time.fromisoformat(str(w["start"])),
                end=time.fromisoformat(str(w["end"])),
                label=str(w.get("label", "")),
            )
            for w in body.get("windows", [])
        ]
        maximum = body.get("max_visits_per_day")
        preferences.save_preferences(
            db(),
            current_actor(),
            person_id,
            max_visits_per_day=None if maximum is None else int(maximum),
            travel_buffer_minutes=int(body.get("travel_buffer_minutes", 60)),
            home_address=str(body.get("home_address", "")),
            windows=windows,
            now=now_utc(),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise DomainError("preferences.format", "see the OpenAPI document for the shape") from None
    return jsonify(
        _preferences_json(
            preferences.read_preferences(db(), current_actor(), person_id, now=now_utc())
        )
    )


def _warning_json(warning: ClashWarning) -> dict[str, Any]:
    return {"kind": warning.kind, "hard": warning.hard, "other": warning.other}


def _check_json(result: CheckResult) -> Any:
    return jsonify(
        {
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "warnings": [_warning_json(w) for w in result.warnings],
        }
    )


@bp.post("/people/<int:person_id>/visits/check")
def check_proposed_visit(person_id: int) -> ResponseReturnValue:
    """What a proposed visit clashes with (caregivers of the person's units; audited)."""
    reach = reach_by_id(db(), current_actor(), person_id)
    return _check_json(
        check_visit(db(), current_actor(), reach, draft_from(_json_body()), now=now_utc())
    )


def _first_visit_reach(body: dict[str, Any]) -> Reach:
    return reach_by_personnummer(
        db(), current_actor(), str(body.get("personnummer", "")), now=now_utc()
    )


@bp.post("/first-visits/check")
def check_first_visit() -> ResponseReturnValue:
    """A unit's first visit to a person it does not yet care for: what the time clashes
    with, against the person's busy time only (personnummer in the body; audited)."""
    body = _json_body()
    reach = _first_visit_reach(body)
    return _check_json(check_visit(db(), current_actor(), reach, draft_from(body), now=now_utc()))


@bp.post("/first-visits")
def create_first_visit() -> ResponseReturnValue:
    """Book a unit's first visit to a person, found by personnummer (never by id); the
    booking starts the unit's care relationship. A hard clash needs override_reason."""
    body = _json_body()
    reach = _first_visit_reach(body)
    booking = book_visit(
        db(),
        current_actor(),
        reach,
        draft_from(body),
        now=now_utc(),
        override_reason=body.get("override_reason"),
    )
    return jsonify({**_booking_json(booking), "person_id": booking.person_id}), 201


def _booking_json(booking: Any) -> dict[str, Any]:
    return {
        "booking_id": booking.id,
        "uid": booking.uid,
        "status": booking.status.value,
        "sequence": booking.sequence,
        "start": booking.start_utc.isoformat(),
        "end": booking.end_utc.isoformat(),
    }


@bp.post("/people/<int:person_id>/visits")
def create_visit(person_id: int) -> ResponseReturnValue:
    """Book a native visit at the caregiver's unit; a hard clash needs override_reason."""
    body = _json_body()
    booking = book_visit(
        db(),
        current_actor(),
        reach_by_id(db(), current_actor(), person_id),
        draft_from(body),
        now=now_utc(),
        override_reason=body.get("override_reason"),
    )
    return jsonify(_booking_json(booking)), 201


@bp.post("/people/<int:person_id>/visits/suggest")
def suggest_visits(person_id: int) -> ResponseReturnValue:
    """The best free times at the caregiver's unit, each with its reason (audited)."""
    body = _json_body()
    try:
        first = date.fromisoformat(str(body.get("from", "")))
        last = date.fromisoformat(str(body.get("to", "")))
        minutes = int(body.get("minutes", 0))
    except (TypeError, ValueError, OverflowError):
        raise DomainError("visit.format", "give minutes, from and to (YYYY-MM-DD)") from None
    first, last = client_day(first, "from"), client_day(last, "to")
    reach = reach_by_id(db(), current_actor(), person_id)
    found = suggest_times(
        db(),
        current_actor(),
        reach,
        minutes=minutes,
        first_day=first,
        last_day=last,
        location=str(body.get("location", "")),
        now=now_utc(),
    )
    zone = reach.person.timezone
    return jsonify(
        [
            {
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "reason": s.reason.kind,
                "explanation": suggestion_text(s.reason, zone),
                "warnings": [_warning_json(w) for w in s.warnings],
            }
            for s in found
        ]
    )


@bp.put("/units/<int:provider_id>/opening-hours")
def put_opening_hours(provider_id: int) -> ResponseReturnValue:
    """Set a unit's opening hours (its caregivers or an administrator)."""
    body = _json_body()
    windows = body.get("windows")
    if not isinstance(windows, list):
        raise DomainError("opening.format", "give windows: a list of weekdays, start, end")
    set_opening_hours(db(), current_actor(), provider_id, windows)
    return jsonify({"provider_id": provider_id, "windows": windows})


@bp.put("/bookings/<int:booking_id>")
def rebook(booking_id: int) -> ResponseReturnValue:
    """Move a native booking of the caregiver's unit (409 clash unless override_reason)."""
    body = _json_body()
    booking = rebook_visit(
        db(),
        current_actor(),
        booking_id,
        draft_from(body),
        now=now_utc(),
        override_reason=body.get("override_reason"),
    )
    return jsonify(_booking_json(booking))


@bp.delete("/bookings/<int:booking_id>")
def cancel(booking_id: int) -> ResponseReturnValue:
    """Cancel a native booking of the caregiver's unit; it is kept as cancelled."""
    return jsonify(_booking_json(cancel_visit(db(), current_actor(), booking_id, now=now_utc())))


@bp.get("/me")
def me() -> ResponseReturnValue:
    """Who is signed in, or which unit and scopes the API token has."""
    token = g.get("api_token")
    if token is not None:
        return jsonify(
            {
                "token": token.name,
                "role": "api_token",
                "unit_id": token.provider_id,
                "unit": token.provider.name,
                "scopes": token.scopes.split(),
            }
        )
    user = g.user
    return jsonify(
        {"username": user.username, "role": user.role.value, "person_id": user.person_id}
    )
