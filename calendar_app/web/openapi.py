"""The OpenAPI 3.1 document of /api/v1, written out so that it is reviewed like code."""

from __future__ import annotations

from typing import Any

from calendar_app.web import openapi_push, openapi_reminders

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["range.too_long"]},
                "message": {"type": "string"},
            },
        }
    },
}

OCCURRENCE = {
    "type": "object",
    "required": [
        "uid",
        "recurrence_id",
        "start",
        "end",
        "all_day",
        "title",
        "location",
        "provider",
        "provider_kind",
        "status",
        "source",
        "overlaps",
    ],
    "properties": {
        "uid": {"type": "string"},
        "recurrence_id": {
            "type": ["string", "null"],
            "description": "RECURRENCE-ID of a series occurrence: ISO 8601 UTC, or a date",
        },
        "start": {
            "type": "string",
            "description": "local time with offset; YYYY-MM-DD for all-day",
            "examples": ["2026-03-30T10:00:00+02:00"],
        },
        "end": {"type": "string", "description": "exclusive; YYYY-MM-DD for all-day"},
        "all_day": {"type": "boolean"},
        "title": {"type": "string"},
        "location": {"type": "string"},
        "provider": {"type": "string"},
        "provider_kind": {
            "type": "string",
            "enum": ["region", "municipality", "other", "personal", ""],
        },
        "status": {"type": "string", "enum": ["confirmed", "tentative", "cancelled"]},
        "source": {"type": "string"},
        "overlaps": {
            "type": "array",
            "items": {"type": "string"},
            "description": "uids this occurrence clashes with ([start, end))",
        },
        "also_from": {"type": "array", "items": {"type": "object"}},
        "likely_duplicate_of": {"type": "array", "items": {"type": "string"}},
        "booking_id": {"type": "integer"},
        "details_hidden": {"type": "boolean"},
    },
}


ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
PERSON_ID = {"name": "person_id", "in": "path", "required": True, "schema": ID}
DATE = {"type": "string", "format": "date"}
BOOKING_ID = {"name": "booking_id", "in": "path", "required": True, "schema": ID}


VISIT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["date", "start", "minutes"],
                "properties": {
                    "date": {
                        "type": "string",
                        "format": "date",
                        "description": "the person's local date",
                    },
                    "start": {
                        "type": "string",
                        "examples": ["10:00"],
                        "description": "local time; a time in the March gap or the "
                        "repeated October hour is refused (time.nonexistent / "
                        "time.ambiguous)",
                    },
                    "minutes": {"type": "integer", "minimum": 5, "maximum": 600},
                    "title": {"type": "string"},
                    "location": {"type": "string"},
                    "mode": {"type": "string", "enum": ["in_person", "phone", "video"]},
                    "override_reason": {"type": "string"},
                },
            },
            "example": {
                "date": "2026-12-02",
                "start": "10:00",
                "minutes": 45,
                "title": "Återbesök",
                "location": "Sigfridsvägen 9, 352 46 Växjö",
            },
        }
    },
}


def _first_visit_body() -> dict[str, Any]:
    """A visit, for a person found by personnummer (in the body, never in the URL)."""
    content = VISIT_BODY["content"]["application/json"]  # type: ignore[index]
    schema = content["schema"]
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    **schema,
                    "required": ["personnummer", *schema["required"]],
                    "properties": {"personnummer": {"type": "string"}, **schema["properties"]},
                },
                "example": {"personnummer": "19900101-2385", **content["example"]},
            }
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "error with a stable code",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def document() -> dict[str, Any]:
    """Return the OpenAPI document."""
    spec = _document()
    spec["paths"].update(openapi_reminders.paths(_errors))
    spec["paths"].update(openapi_push.paths(_errors))
    return spec


def _document() -> dict[str, Any]:
    date_param = {"type": "string", "format": "date"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Personkalendern API",
            "version": "1",
            "description": "One merged calendar per person. People sign in on the site and "
            "the session cookie authenticates; provider systems and scripts send an API token "
            "(`Authorization: Bearer pk_...`) that an administrator made for one unit, with "
            "scopes: calendar:read (calendar, busy, check, suggest), visits:write (book, "
            "rebook, cancel), units:write (opening hours), bookings:push (a unit's own system "
            "creates, updates and cancels its bookings: /api/v1/push/bookings). Reads of "
            "someone else's calendar "
            "are audited. Request bodies are limited to 64 KiB; too many calls get 429.",
        },
        "security": [{"session": []}, {"apiToken": []}],
        "paths": {
            "/api/v1/people/{person_id}/calendar": {
                "get": {
                    "operationId": "getCalendar",
                    "summary": "Merged calendar for [from, to) in the person's time zone",
                    "parameters": [
                        {
                            "name": "person_id",
                            "in": "path",
                            "required": True,
                            "schema": ID,
                        },
                        {
                            "name": "from",
                            "in": "query",
                            "required": True,
                            "schema": date_param,
                            "description": "first day, inclusive",
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "required": True,
                            "schema": date_param,
                            "description": "last day, exclusive; at most about 400 days after from",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the occurrences overlapping the range, by start",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "person_id": {"type": "integer"},
                                            "timezone": {"type": "string"},
                                            "from": date_param,
                                            "to": date_param,
                                            "occurrences": {
                                                "type": "array",
                                                "items": {
                                                    "$ref": "#/components/schemas/Occurrence"
                                                },
                                            },
                                            "source_warnings": {
                                                "description": "sources whose bookings may "
                                                "be out of date: stale or failing (since "
                                                "is the last good read, null if none) or "
                                                "held for review",
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "unit": {"type": "string"},
                                                        "state": {
                                                            "type": "string",
                                                            "enum": ["stale", "failing", "held"],
                                                        },
                                                        "since": {
                                                            "type": ["string", "null"],
                                                            "format": "date-time",
                                                        },
                                                    },
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/api/v1/people/{person_id}/settings": {
                "get": {
                    "operationId": "getSettings",
                    "summary": "Consent per unit, care relationships and helpers",
                    "parameters": [PERSON_ID],
                    "responses": {
                        "200": {"description": "the person's settings"},
                        **_errors(401, 403),
                    },
                }
            },
            "/api/v1/people/{person_id}/consents/{provider_id}": {
                "put": {
                    "operationId": "putConsent",
                    "summary": "What a unit's caregivers see of other units; sensitive or not",
                    "parameters": [
                        PERSON_ID,
                        {
                            "name": "provider_id",
                            "in": "path",
                            "required": True,
                            "schema": ID,
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["others_level"],
                                    "properties": {
                                        "others_level": {
                                            "type": "string",
                                            "enum": ["busy", "time_place", "full"],
                                        },
                                        "sensitive": {"type": "boolean"},
                                    },
                                },
                                "example": {"others_level": "time_place", "sensitive": False},
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "saved"},
                        **_errors(400, 401, 403, 404, 415),
                    },
                }
            },
            "/api/v1/people/{person_id}/audit": {
                "get": {
                    "operationId": "getAudit",
                    "summary": "Who has seen the person's data in [from, to) (the person only)",
                    "parameters": [
                        PERSON_ID,
                        {"name": "from", "in": "query", "required": True, "schema": DATE},
                        {"name": "to", "in": "query", "required": True, "schema": DATE},
                    ],
                    "responses": {
                        "200": {"description": "audit rows, newest first"},
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/api/v1/busy": {
                "post": {
                    "operationId": "postBusy",
                    "summary": "For a caregiver booking a first visit: when the person is busy "
                    "(at most 31 days; audited). The personnummer goes in the body.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["personnummer", "from", "to"],
                                    "properties": {
                                        "personnummer": {"type": "string"},
                                        "from": DATE,
                                        "to": DATE,
                                    },
                                },
                                "example": {
                                    "personnummer": "19900101-2385",
                                    "from": "2026-12-01",
                                    "to": "2026-12-08",
                                },
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "busy intervals, joined"},
                        **_errors(400, 401, 403, 404, 415),
                    },
                }
            },
            "/api/v1/first-visits/check": {
                "post": {
                    "operationId": "checkFirstVisit",
                    "summary": "A unit's first visit to a person it does not yet care for: what "
                    "the time clashes with, against the person's busy time only (audited)",
                    "requestBody": _first_visit_body(),
                    "responses": {
                        "200": {"description": "hard clashes and soft warnings"},
                        **_errors(400, 401, 403, 404, 415),
                    },
                }
            },
            "/api/v1/first-visits": {
                "post": {
                    "operationId": "bookFirstVisit",
                    "summary": "Book a unit's first visit to a person found by personnummer; "
                    "it starts the unit's care relationship (a hard clash needs "
                    "override_reason: 409 clash)",
                    "requestBody": _first_visit_body(),
                    "responses": {
                        "201": {"description": "booked; person_id names the person from now on"},
                        **_errors(400, 401, 403, 404, 409, 415),
                    },
                }
            },
            "/api/v1/people/{person_id}/visits/check": {
                "post": {
                    "operationId": "checkVisit",
                    "summary": "What a proposed visit clashes with (caregivers of a unit that "
                    "cares for the person; audited)",
                    "parameters": [PERSON_ID],
                    "requestBody": VISIT_BODY,
                    "responses": {
                        "200": {"description": "hard clashes and soft warnings"},
                        **_errors(400, 401, 403, 415),
                    },
                }
            },
            "/api/v1/people/{person_id}/visits": {
                "post": {
                    "operationId": "bookVisit",
                    "summary": "Book a native visit at the caregiver's unit; the clash check "
                    "runs again atomically; a hard clash needs override_reason (409 clash)",
                    "parameters": [PERSON_ID],
                    "requestBody": VISIT_BODY,
                    "responses": {
                        "201": {"description": "booked"},
                        **_errors(400, 401, 403, 409, 415),
                    },
                }
            },
            "/api/v1/people/{person_id}/preferences": {
                "get": {
                    "operationId": "getPreferences",
                    "summary": "Times that suit, busy periods, daily maximum, travel, home",
                    "parameters": [PERSON_ID],
                    "responses": {"200": {"description": "the preferences"}, **_errors(401, 403)},
                },
                "put": {
                    "operationId": "putPreferences",
                    "summary": "Replace the preferences (windows included); one transaction",
                    "parameters": [PERSON_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "max_visits_per_day": {
                                            "type": ["integer", "null"],
                                            "minimum": 1,
                                            "maximum": 20,
                                        },
                                        "travel_buffer_minutes": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "maximum": 240,
                                        },
                                        "home_address": {"type": "string"},
                                        "windows": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["kind", "weekdays", "start", "end"],
                                                "properties": {
                                                    "kind": {
                                                        "type": "string",
                                                        "enum": ["suitable", "busy"],
                                                    },
                                                    "label": {"type": "string"},
                                                    "weekdays": {
                                                        "type": "array",
                                                        "items": {
                                                            "type": "integer",
                                                            "minimum": 0,
                                                            "maximum": 6,
                                                        },
                                                    },
                                                    "start": {
                                                        "type": "string",
                                                        "examples": ["18:00"],
                                                    },
                                                    "end": {
                                                        "type": "string",
                                                        "examples": ["21:00"],
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                                "example": {
                                    "max_visits_per_day": 2,
                                    "travel_buffer_minutes": 60,
                                    "home_address": "Storgatan 3, 352 30 Växjö",
                                    "windows": [
                                        {
                                            "kind": "busy",
                                            "label": "Arbete",
                                            "weekdays": [0, 1, 2, 3, 4],
                                            "start": "08:00",
                                            "end": "16:00",
                                        }
                                    ],
                                },
                            }
                        },
                    },
                    "responses": {"200": {"description": "saved"}, **_errors(400, 401, 403, 415)},
                },
            },
            "/api/v1/people/{person_id}/visits/suggest": {
                "post": {
                    "operationId": "suggestVisits",
                    "summary": "The best free times at the caregiver's unit, each explained "
                    "in Swedish (same day as another visit ranks first); audited",
                    "parameters": [PERSON_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["minutes", "from", "to"],
                                    "properties": {
                                        "minutes": {"type": "integer"},
                                        "from": DATE,
                                        "to": DATE,
                                        "location": {"type": "string"},
                                    },
                                },
                                "example": {
                                    "minutes": 45,
                                    "from": "2026-12-01",
                                    "to": "2026-12-14",
                                    "location": "Sigfridsvägen 9, 352 46 Växjö",
                                },
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "suggestions, best first"},
                        **_errors(400, 401, 403, 415),
                    },
                }
            },
            "/api/v1/units/{provider_id}/opening-hours": {
                "put": {
                    "operationId": "putOpeningHours",
                    "summary": "A unit's opening hours (its caregivers or an administrator)",
                    "parameters": [
                        {
                            "name": "provider_id",
                            "in": "path",
                            "required": True,
                            "schema": ID,
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["windows"]},
                                "example": {
                                    "windows": [
                                        {"weekdays": [0, 1, 2, 3], "start": "08:00", "end": "16:30"}
                                    ]
                                },
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "saved"},
                        **_errors(400, 401, 403, 404, 415),
                    },
                }
            },
            "/api/v1/bookings/{booking_id}": {
                "put": {
                    "operationId": "rebookVisit",
                    "summary": "Move a native booking of the caregiver's unit; the clash check "
                    "runs again under the person's lock (409 clash, booking.synced)",
                    "parameters": [BOOKING_ID],
                    "requestBody": VISIT_BODY,
                    "responses": {
                        "200": {"description": "moved; SEQUENCE bumped"},
                        **_errors(400, 401, 403, 409, 415),
                    },
                },
                "delete": {
                    "operationId": "cancelVisit",
                    "summary": "Cancel a native booking (kept with status cancelled)",
                    "parameters": [BOOKING_ID],
                    "responses": {"200": {"description": "cancelled"}, **_errors(401, 403, 409)},
                },
            },
            "/api/v1/me": {
                "get": {
                    "operationId": "getMe",
                    "summary": "The signed-in account, or the API token's unit and scopes",
                    "responses": {"200": {"description": "account"}, **_errors(401)},
                }
            },
        },
        "components": {
            "schemas": {"Error": ERROR, "Occurrence": OCCURRENCE},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "apiToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
