"""/api/v1/push/bookings: provider systems that send their bookings instead of being read.

Registered on the API blueprint (same errors, token check and rate limit). Here the JSON
body is read into a draft; what a push does is :mod:`calendar_app.services.push`. The
personnummer travels only in the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import jsonify
from flask.typing import ResponseReturnValue

from calendar_app.domain.errors import DomainError
from calendar_app.services import push
from calendar_app.web import db, now_utc
from calendar_app.web.api import CONTROL_CHARACTERS, _json_body, bp, error
from calendar_app.web.auth import current_actor

BASE = "/push/bookings/<external_id>"
REQUIRED = ("personnummer", "start", "end")
FIELDS = (*REQUIRED, "status", "mode", "transport_needed", "sequence", *push.TEXTS)

_NAME = re.compile(r"[A-Za-z_]{1,40}")  # a field name safe to repeat in an error
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")
_ZONE = re.compile(r"[Zz]|[+-]\d{2}:?\d{2}")


def draft_from(body: Mapping[str, Any]) -> push.PushDraft:
    """Read a pushed body field by field; the first fault is a clear error with a code.

    Unknown fields are refused, so that a misspelt one is not silently lost. No message
    repeats a value: a personnummer may be in any of them.
    """
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        named = sorted(name for name in unknown if _NAME.fullmatch(name))
        shown = ", ".join(named) + (" and others" if len(named) < len(unknown) else "")
        raise DomainError(
            "push.field_unknown",
            f"unknown fields: {shown}" if named else "the body has fields this API does not know",
        )
    missing = [name for name in REQUIRED if body.get(name) is None]
    if missing:
        raise DomainError("push.field_missing", f"give {', '.join(missing)}")
    if not isinstance(body["personnummer"], str):
        raise DomainError("push.field_type", "'personnummer' must be a string")
    texts = {name: _text(body, name, limit) for name, limit in push.TEXTS.items()}
    return push.PushDraft(
        personnummer=body["personnummer"],
        start_utc=_instant(body, "start"),
        end_utc=_instant(body, "end"),
        status=push.STATUSES[_choice(body, "status", tuple(push.STATUSES), "booked")],
        title=texts["title"],
        location=texts["location"],
        description=texts["description"],
        practitioner_name=texts["practitioner_name"] or None,
        mode=_choice(body, "mode", push.MODES, "in_person"),
        interpreter_language=texts["interpreter_language"] or None,
        transport_needed=_flag(body, "transport_needed"),
        cancellation_terms=texts["cancellation_terms"] or None,
        no_show_fee=texts["no_show_fee"] or None,
        sequence=_sequence(body),
    )


def _instant(body: Mapping[str, Any], name: str) -> datetime:
    value = body[name]
    if not isinstance(value, str):
        raise DomainError("push.field_type", f"'{name}' must be a string")
    text = value.strip()
    match = _TIME.match(text)
    if match is None:
        raise DomainError(
            "push.time_format", f"'{name}' must be ISO 8601, e.g. 2026-12-02T10:00:00+01:00"
        )
    zone = text[match.end() :]
    if not zone:
        raise DomainError("push.time_zone", f"'{name}' has no UTC offset: add Z or one like +01:00")
    if not _ZONE.fullmatch(zone):
        raise DomainError(
            "push.time_format", f"'{name}' must be ISO 8601, e.g. 2026-12-02T10:00:00+01:00"
        )
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise DomainError("push.time_format", f"'{name}' is not a real date and time") from None


def _text(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError("push.field_type", f"'{name}' must be a string or null")
    value = value.strip()
    if len(value) > limit:
        raise DomainError("push.too_long", f"'{name}' is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DomainError("push.text", f"'{name}' is not valid Unicode text") from None
    if CONTROL_CHARACTERS.search(value):
        raise DomainError("push.text", f"'{name}' contains control characters")
    return value


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise DomainError(f"push.{name}", f"'{name}' must be one of {', '.join(allowed)}")
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DomainError("push.field_type", f"'{name}' must be true or false")
    return value


def _sequence(body: Mapping[str, Any]) -> int | None:
    value = body.get("sequence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= push.MAX_SEQUENCE:
        raise DomainError(
            "push.sequence", f"'sequence' must be a whole number 0-{push.MAX_SEQUENCE}"
        )
    return value


@bp.errorhandler(push.PushConflict)
def _conflict(exc: push.PushConflict) -> Any:
    db().rollback()
    return error(exc.code, exc.message, 409)


def _booking_json(view: push.PushedBooking) -> dict[str, Any]:
    zone = ZoneInfo(view.timezone)
    return {
        "external_id": view.external_id,
        "booking_id": view.booking_id,
        "person_id": view.person_id,
        "person": view.person,
        "status": view.status,
        "start": view.start_utc.astimezone(zone).isoformat(),
        "end": view.end_utc.astimezone(zone).isoformat(),
        "title": view.title,
        "location": view.location,
        "description": view.description,
        "practitioner_name": view.practitioner_name,
        "mode": view.mode,
        "interpreter_language": view.interpreter_language,
        "transport_needed": view.transport_needed,
        "cancellation_terms": view.cancellation_terms,
        "no_show_fee": view.no_show_fee,
        "sequence": view.sequence,
        "first_seen": view.first_seen_utc.isoformat(),
        "last_seen": view.last_seen_utc.isoformat(),
    }


def _outcome_json(outcome: push.PushOutcome) -> dict[str, Any]:
    return {
        "result": outcome.result,
        "changed": list(outcome.changed),
        "booking": _booking_json(outcome.booking),
    }


@bp.put(BASE)
def put_pushed_booking(external_id: str) -> ResponseReturnValue:
    """Create (201) or update (200) the unit's booking with the provider's own id; the same
    push again is 200 "unchanged" and writes nothing."""
    actor = current_actor()
    push.require_pusher(actor)  # before the body: who may not push learns nothing else
    push.check_external_id(external_id)
    draft = draft_from(_json_body(texts_checked_here=False))
    outcome = push.push_booking(db(), actor, external_id, draft, now=now_utc())
    return jsonify(_outcome_json(outcome)), 201 if outcome.result == "created" else 200


@bp.delete(BASE)
def cancel_pushed_booking(external_id: str) -> ResponseReturnValue:
    """Cancel it (kept, with status cancelled); cancelling again changes nothing."""
    outcome = push.cancel_pushed(db(), current_actor(), external_id, now=now_utc())
    return jsonify(_outcome_json(outcome))


@bp.get(BASE)
def get_pushed_booking(external_id: str) -> ResponseReturnValue:
    """What is stored for the unit's booking id (personnummer masked); audited."""
    view = push.read_pushed(db(), current_actor(), external_id, now=now_utc())
    return jsonify(_booking_json(view))
