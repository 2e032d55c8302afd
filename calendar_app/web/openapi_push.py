"""The OpenAPI paths of /api/v1/push/bookings/{external_id} (see web/api_push.py)."""

from __future__ import annotations

from typing import Any

from calendar_app.services import push

EXTERNAL_ID = {
    "name": "external_id",
    "in": "path",
    "required": True,
    "description": "the provider system's own id of the booking, unique within the unit; "
    "never a personnummer",
    "schema": {
        "type": "string",
        "pattern": f"^{push.EXTERNAL_ID.pattern}$",
        "examples": ["BS-2026-000417"],
    },
}
INSTANT = {
    "type": "string",
    "description": "ISO 8601 with a UTC offset or Z; a time without one is refused "
    "(push.time_zone)",
    "examples": ["2026-12-02T10:00:00+01:00"],
}
TEXT_OR_NULL = {"type": ["string", "null"]}

BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["personnummer", "start", "end"],
    "properties": {
        "personnummer": {
            "type": "string",
            "description": "YYYYMMDD-XXXX, YYYYMMDDXXXX, YYMMDD-XXXX or YYMMDD+XXXX; only "
            "ever in the body",
        },
        "start": {
            **INSTANT,
            "description": f"{INSTANT['description']}; within a year back and two years "
            "ahead (push.time_range)",
        },
        "end": {
            **INSTANT,
            "description": f"{INSTANT['description']}; after start, at most 14 days later",
        },
        "status": {"type": "string", "enum": list(push.STATUSES), "default": "booked"},
        "mode": {"type": "string", "enum": list(push.MODES), "default": "in_person"},
        "transport_needed": {"type": "boolean", "default": False},
        "sequence": {
            "type": "integer",
            "minimum": 0,
            "maximum": push.MAX_SEQUENCE,
            "description": "the booking's revision; a lower one than stored is refused "
            "(409 push.sequence_old); left out, the stored one stays",
        },
        **{name: {**TEXT_OR_NULL, "maxLength": limit} for name, limit in push.TEXTS.items()},
        "interpreter_language": {
            **TEXT_OR_NULL,
            "maxLength": push.TEXTS["interpreter_language"],
            "description": "an interpreter is booked, for this language",
        },
        "cancellation_terms": {
            **TEXT_OR_NULL,
            "maxLength": push.TEXTS["cancellation_terms"],
            "description": "the unit's cancellation deadline, shown where the person decides",
        },
    },
}
BOOKING = {
    "type": "object",
    "required": ["external_id", "booking_id", "person", "status", "start", "end", "sequence"],
    "properties": {
        "external_id": {"type": "string"},
        "booking_id": {"type": "integer"},
        "person_id": {"type": "integer"},
        "person": {
            "type": "string",
            "description": "the personnummer masked",
            "examples": ["19900101-****"],
        },
        "status": {"type": "string", "enum": list(push.STATUSES)},
        "start": {"type": "string", "description": "in the person's time zone, with offset"},
        "end": {"type": "string"},
        "title": {"type": "string"},
        "location": {"type": "string"},
        "description": {"type": "string"},
        "practitioner_name": TEXT_OR_NULL,
        "mode": {"type": "string", "enum": list(push.MODES)},
        "interpreter_language": TEXT_OR_NULL,
        "transport_needed": {"type": "boolean"},
        "cancellation_terms": TEXT_OR_NULL,
        "no_show_fee": TEXT_OR_NULL,
        "sequence": {"type": "integer"},
        "first_seen": {"type": "string", "format": "date-time"},
        "last_seen": {
            "type": "string",
            "format": "date-time",
            "description": "the last push that changed it (a repeated push writes nothing)",
        },
    },
}
OUTCOME = {
    "type": "object",
    "required": ["result", "changed", "booking"],
    "properties": {
        "result": {"type": "string", "enum": ["created", "updated", "cancelled", "unchanged"]},
        "changed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the fields that changed, by the names of the request body",
        },
        "booking": BOOKING,
    },
}

BOOKED = {
    "personnummer": "19900101-2385",
    "start": "2026-12-02T10:00:00+01:00",
    "end": "2026-12-02T10:45:00+01:00",
    "title": "Boendestöd",
    "location": "Storgatan 3, 352 30 Växjö",
    "practitioner_name": "Sara Holm",
    "mode": "in_person",
    "transport_needed": False,
    "cancellation_terms": "Avboka senast dagen före kl. 12",
    "sequence": 1,
}
STORED = {
    "external_id": "BS-2026-000417",
    "booking_id": 4711,
    "person_id": 12,
    "person": "19900101-****",
    "status": "booked",
    "start": "2026-12-02T11:00:00+01:00",
    "end": "2026-12-02T11:45:00+01:00",
    "title": "Boendestöd",
    "location": "Storgatan 3, 352 30 Växjö",
    "description": "",
    "practitioner_name": "Sara Holm",
    "mode": "in_person",
    "interpreter_language": None,
    "transport_needed": False,
    "cancellation_terms": "Avboka senast dagen före kl. 12",
    "no_show_fee": None,
    "sequence": 2,
    "first_seen": "2026-11-23T09:00:00+00:00",
    "last_seen": "2026-11-24T08:15:00+00:00",
}

CREATED = {
    **STORED,
    "start": "2026-12-02T10:00:00+01:00",
    "end": "2026-12-02T10:45:00+01:00",
    "sequence": 1,
    "last_seen": "2026-11-23T09:00:00+00:00",
}
OUTCOME_CREATED = {"result": "created", "changed": [], "booking": CREATED}
OUTCOME_UPDATED = {"result": "updated", "changed": ["start", "end", "sequence"], "booking": STORED}
OUTCOME_CANCELLED = {
    "result": "cancelled",
    "changed": ["status"],
    "booking": {**STORED, "status": "cancelled"},
}


def _outcome(what: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": what,
        "content": {"application/json": {"schema": OUTCOME, "example": example}},
    }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"summary": code, "value": {"error": {"code": code, "message": message}}}


def _with_examples(responses: dict[str, Any], examples: dict[str, dict[str, Any]]) -> None:
    """Add example error bodies to the shared error responses, by status."""
    for status, named in examples.items():
        responses[status]["content"]["application/json"]["examples"] = named


def paths(errors: Any) -> dict[str, Any]:
    """The push paths; ``errors`` builds the error responses as the main document does."""
    put_errors = errors(400, 401, 403, 404, 409, 415)
    _with_examples(
        put_errors,
        {
            "400": {
                "zone": _error(
                    "push.time_zone", "'start' has no UTC offset: add Z or one like +01:00"
                ),
                "unknown": _error("push.field_unknown", "unknown fields: titel"),
            },
            "404": {
                "person": _error(
                    "person.not_found", "no person with that personnummer is registered"
                )
            },
            "409": {
                "older": _error(
                    "push.sequence_old", "the stored booking has sequence 2; this one is older"
                ),
                "person": _error(
                    "push.other_person", "this booking id is already used for another person"
                ),
            },
        },
    )
    read_errors = errors(400, 401, 403, 404)
    _with_examples(
        read_errors,
        {
            "404": {
                "unknown": _error(
                    "booking.not_found", "the unit has pushed no booking with this id"
                )
            }
        },
    )
    scope = (
        "Needs an API token with the scope bookings:push; the booking belongs to the token's "
        "unit, and another unit's token never sees it (404)."
    )
    return {
        "/api/v1/push/bookings/{external_id}": {
            "put": {
                "operationId": "putPushedBooking",
                "summary": "Create or update the unit's booking with the provider's own id",
                "description": f"{scope} The body replaces the booking: a field left out "
                "takes its default (sequence keeps the stored one). The first push answers 201 "
                "created, a changed one 200 updated with the fields that changed, the same "
                "push again 200 unchanged and writes nothing. The person must be registered "
                "(404 person.not_found); the id stays with the person it was first pushed for "
                "(409 push.other_person). Unknown fields are refused (push.field_unknown). "
                "A bad request changes nothing. Reminders are planned as for any visit.",
                "parameters": [EXTERNAL_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": BODY,
                            "examples": {
                                "booked": {"summary": "a new visit", "value": BOOKED},
                                "moved": {
                                    "summary": "moved an hour later",
                                    "value": {
                                        **BOOKED,
                                        "start": "2026-12-02T11:00:00+01:00",
                                        "end": "2026-12-02T11:45:00+01:00",
                                        "sequence": 2,
                                    },
                                },
                                "interpreter": {
                                    "summary": "a phone visit with an interpreter",
                                    "value": {
                                        "personnummer": "19900101-2385",
                                        "start": "2026-12-03T08:30:00Z",
                                        "end": "2026-12-03T09:00:00Z",
                                        "mode": "phone",
                                        "interpreter_language": "arabiska",
                                    },
                                },
                            },
                        }
                    },
                },
                "responses": {
                    "201": _outcome("created", OUTCOME_CREATED),
                    "200": _outcome("updated or unchanged", OUTCOME_UPDATED),
                    **put_errors,
                },
            },
            "delete": {
                "operationId": "cancelPushedBooking",
                "summary": "Cancel the unit's booking with the provider's own id",
                "description": f"{scope} The booking is kept with status cancelled and its "
                "reminders are withdrawn; cancelling again answers 200 unchanged. Pushing it "
                "again with status booked books it again.",
                "parameters": [EXTERNAL_ID],
                "responses": {
                    "200": _outcome("cancelled or unchanged", OUTCOME_CANCELLED),
                    **read_errors,
                },
            },
            "get": {
                "operationId": "getPushedBooking",
                "summary": "What is stored for the provider's id (to reconcile); audited",
                "description": f"{scope} The personnummer is shown masked.",
                "parameters": [EXTERNAL_ID],
                "responses": {
                    "200": {
                        "description": "the stored booking",
                        "content": {"application/json": {"schema": BOOKING, "example": STORED}},
                    },
                    **read_errors,
                },
            },
        }
    }
