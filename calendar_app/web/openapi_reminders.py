"""The OpenAPI paths of /api/v1/people/{person_id}/reminders (see web/api_reminders.py)."""

from __future__ import annotations

from typing import Any

ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
PERSON = {"name": "person_id", "in": "path", "required": True, "schema": ID}
CLOCK = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "examples": ["18:00"]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def paths(errors: Any) -> dict[str, Any]:
    """The reminder paths; ``errors`` builds the error responses as the main document does."""
    view = {"description": "rules, recipients, quiet hours, units, every reminder's state"}
    base = "/api/v1/people/{person_id}/reminders"
    return {
        base: {
            "get": {
                "operationId": "getReminders",
                "summary": "Reminder rules, quiet hours, units and each reminder's state",
                "parameters": [PERSON],
                "responses": {"200": view, **errors(401, 403, 404)},
            }
        },
        f"{base}/rules": {
            "post": {
                "operationId": "addReminderRule",
                "summary": "Add a rule: days_before (days 0-14, at), hours_before (1-72), "
                "transport (days 1-14, at); re-plans the outbox",
                "parameters": [PERSON],
                "requestBody": _json(
                    {
                        "type": "object",
                        "required": ["kind"],
                        "properties": {
                            "kind": {
                                "type": "string",
                                "enum": ["days_before", "hours_before", "transport"],
                            },
                            "days": {"type": "integer", "minimum": 0, "maximum": 14},
                            "at": CLOCK,
                            "hours": {"type": "integer", "minimum": 1, "maximum": 72},
                        },
                        "examples": [{"kind": "days_before", "days": 2, "at": "18:00"}],
                    }
                ),
                "responses": {"201": view, **errors(400, 401, 403, 404, 415)},
            }
        },
        f"{base}/rules/{{rule_id}}": {
            "delete": {
                "operationId": "removeReminderRule",
                "summary": "Remove a rule; its planned reminders are withdrawn",
                "parameters": [
                    PERSON,
                    {"name": "rule_id", "in": "path", "required": True, "schema": ID},
                ],
                "responses": {"200": view, **errors(401, 403, 404)},
            }
        },
        f"{base}/settings": {
            "put": {
                "operationId": "putReminderSettings",
                "summary": "Reminders to the person on or off; quiet hours (both or neither)",
                "parameters": [PERSON],
                "requestBody": _json(
                    {
                        "type": "object",
                        "properties": {
                            "to_person": {"type": "boolean"},
                            "cancellation_notice": {"type": "boolean"},
                            "quiet_start": {"oneOf": [CLOCK, {"type": "null"}]},
                            "quiet_end": {"oneOf": [CLOCK, {"type": "null"}]},
                        },
                    }
                ),
                "responses": {"200": view, **errors(400, 401, 403, 404, 415)},
            }
        },
        f"{base}/units/{{provider_id}}": {
            "put": {
                "operationId": "putUnitReminders",
                "summary": "Reminders for one unit's visits on or off; whether they may name "
                "the unit (otherwise 'din vårdgivare')",
                "parameters": [
                    PERSON,
                    {"name": "provider_id", "in": "path", "required": True, "schema": ID},
                ],
                "requestBody": _json(
                    {
                        "type": "object",
                        "required": ["reminders"],
                        "properties": {
                            "reminders": {"type": "boolean"},
                            "named_in_sms": {"type": "boolean"},
                        },
                    }
                ),
                "responses": {"200": view, **errors(400, 401, 403, 404, 415)},
            }
        },
    }
