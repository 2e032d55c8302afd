"""/api/v1 for reminders: the person's rules, quiet hours, per-unit opt-out, and the
state of every reminder. Registered on the API blueprint (same errors, same auth)."""

from __future__ import annotations

from datetime import time
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from calendar_app.domain.errors import DomainError
from calendar_app.services import reminders
from calendar_app.web import db, now_utc
from calendar_app.web.api import _json_body, bp
from calendar_app.web.auth import current_actor
from calendar_app.web.messages import rule_text

BASE = "/people/<int:person_id>/reminders"


def _clock(body: dict[str, Any], name: str) -> time | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise DomainError("reminder.time", f"'{name}' must be a time as HH:MM") from None


def _whole(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("reminder.rule", f"'{name}' must be a whole number")
    return value


def _view_json(view: reminders.ReminderView) -> dict[str, Any]:
    quiet = None
    if view.quiet_start and view.quiet_end:
        quiet = {"start": f"{view.quiet_start:%H:%M}", "end": f"{view.quiet_end:%H:%M}"}
    return {
        "person_id": view.person_id,
        "has_phone": view.has_phone,
        "rules": [{"id": rid, "rule": spec, "text": rule_text(spec)} for rid, spec in view.rules],
        "default_applies": not view.rules,
        "to_person": view.to_person,
        "cancellation_notice": view.cancellation_notice,
        "quiet_hours": quiet,
        "units": [
            {"unit_id": u, "unit": name, "reminders": on, "named_in_sms": named}
            for u, name, on, named in view.units
        ],
        "helpers": [{"name": h.label, "has_phone": h.phone_e164 is not None} for h in view.helpers],
        "reminders": [
            {
                "id": r.id,
                "booking_id": r.booking_id,
                "visit_start": r.visit_start_utc.isoformat(),
                "send_at": r.send_at_utc.isoformat(),
                "rule": r.rule_label,
                "to": "person" if r.helper_grant_id is None else r.recipient_label,
                "state": r.state.value,
                "reason": r.reason,
                "segments": r.segments,
            }
            for r in view.reminders
        ],
    }


def _current(person_id: int) -> ResponseReturnValue:
    view = reminders.read_reminders(db(), current_actor(), person_id, now=now_utc())
    return jsonify(_view_json(view))


@bp.get(BASE)
def get_reminders(person_id: int) -> ResponseReturnValue:
    """Rules, recipients, quiet hours, units and every reminder with its state."""
    return _current(person_id)


@bp.post(f"{BASE}/rules")
def add_reminder_rule(person_id: int) -> ResponseReturnValue:
    """Add a rule; answers with the whole reminder view (re-planned)."""
    body = _json_body()
    reminders.add_rule(
        db(),
        current_actor(),
        person_id,
        kind=str(body.get("kind", "")),
        days=_whole(body, "days"),
        at=_clock(body, "at"),
        hours=_whole(body, "hours"),
        now=now_utc(),
    )
    view = reminders.read_reminders(db(), current_actor(), person_id, now=now_utc())
    return jsonify(_view_json(view)), 201


@bp.delete(f"{BASE}/rules/<int:rule_id>")
def remove_reminder_rule(person_id: int, rule_id: int) -> ResponseReturnValue:
    """Remove a rule; its planned reminders are withdrawn."""
    reminders.remove_rule(db(), current_actor(), person_id, rule_id, now=now_utc())
    return _current(person_id)


@bp.put(f"{BASE}/settings")
def put_reminder_settings(person_id: int) -> ResponseReturnValue:
    """Whether the person gets reminders, and the quiet hours (both or neither)."""
    body = _json_body()
    to_person = body.get("to_person", True)
    notice = body.get("cancellation_notice")
    if not isinstance(to_person, bool) or not isinstance(notice, bool | None):
        raise DomainError(
            "reminder.settings", "'to_person' and 'cancellation_notice' must be true or false"
        )
    reminders.set_reminder_settings(
        db(),
        current_actor(),
        person_id,
        to_person=to_person,
        cancellation_notice=notice,
        quiet_start=_clock(body, "quiet_start"),
        quiet_end=_clock(body, "quiet_end"),
        now=now_utc(),
    )
    return _current(person_id)


@bp.put(f"{BASE}/units/<int:provider_id>")
def put_unit_reminders(person_id: int, provider_id: int) -> ResponseReturnValue:
    """Reminders for one unit's visits on or off."""
    body = _json_body()
    on = body.get("reminders")
    if not isinstance(on, bool):
        raise DomainError("reminder.settings", "'reminders' must be true or false")
    reminders.set_unit_reminders(
        db(), current_actor(), person_id, provider_id, on=on, now=now_utc()
    )
    return _current(person_id)
