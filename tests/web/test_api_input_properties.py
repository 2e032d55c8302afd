"""The JSON API on arbitrary input (issue 21, point 6): whatever a client sends to
/api/v1 (any JSON value where a field is expected, bodies nested thousands deep, any
string as a date or time, the calendar's first and last days, numbers beyond any clock,
texts no database stores), the answer is a 2xx, or a 4xx with the error body
``{"error": {"code": ..., "message": ...}}``; never a 5xx.

Hypothesis draws the examples, the same on every run (``derandomize``). Most of them are
plausible requests with one thing wrong, so that they get past the first check to the
code behind it. Each endpoint is a test of its own; its world is built once and the
examples run against it in turn (what one example books or sets, the next one sees).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendar_app.services import tokens
from tests.support.world import World, log_in

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"RATELIMIT_API": "1000000 per minute"}


# --- What a client can send --------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says (``st.one_of`` draws a
    strategy given twice no more often than one given once)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda chosen: chosen
    )


@dataclass(frozen=True)
class Raw:
    """A body sent as it is, not as JSON made from a Python value."""

    text: str


# Mostly ordinary text; now and then any, lone surrogates and control characters included.
ORDINARY = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=20)
NASTY_CHARACTERS = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1b", "\u2028", "\ufeff"])
ANY_TEXT = st.text(
    weighted((1, NASTY_CHARACTERS), (2, st.characters(exclude_categories=()))),
    min_size=1,
    max_size=20,
)
TEXTS = weighted((3, ORDINARY), (1, ANY_TEXT))
# Numbers no count or clock takes: JSON's 1e400 reads as infinity.
NASTY_NUMBERS = st.sampled_from(
    [float("inf"), float("-inf"), float("nan"), 10**30, -(10**30), 2**63, 1e300]
)
NUMBERS = weighted((2, st.integers()), (1, st.floats()), (2, NASTY_NUMBERS))


def number(plausible: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """A count or length: mostly a plausible one, now and then any number."""
    return weighted((3, plausible), (1, NUMBERS))


NEAR = st.dates(date(2026, 11, 24), date(2027, 3, 1))
# Where a day more or less overflows, and the first and last days a client may ask about.
EDGES = st.sampled_from(
    [
        date(1, 1, 1),
        date(1, 1, 2),
        date(9999, 12, 31),
        date(9999, 12, 30),
        date(1900, 1, 1),
        date(2200, 12, 31),
    ]
)
DAYS = weighted((3, NEAR), (1, st.dates()), (2, EDGES))
DATES = DAYS.map(date.isoformat)
WORKING_HOURS = st.builds(time, st.integers(7, 18), st.sampled_from([0, 15, 30, 45]))
TIMES = weighted(
    (4, WORKING_HOURS.map(lambda t: t.strftime("%H:%M"))),
    (1, st.times().map(time.isoformat)),
    (1, st.sampled_from(["24:00", "10.00", "7", "", "1²:00"])),
)
INSTANTS = st.builds(
    lambda day, clock, zone: f"{day}T{clock}{zone}",
    DATES,
    WORKING_HOURS.map(lambda t: t.strftime("%H:%M:%S")),
    weighted((4, st.just("+01:00")), (1, st.sampled_from(["Z", "+14:00", "", "+99:00"]))),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS, DATES, TIMES)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=8,
)
# What no JSON encoder writes: nesting thousands deep, broken syntax, any text.
RAW = st.one_of(
    st.integers(1, 20_000).map(lambda n: Raw("[" * n + "]" * n)),
    st.integers(1, 10_000).map(lambda n: Raw('{"a":' * n + "1" + "}" * n)),
    st.integers(1, 10_000).map(lambda n: Raw('{"title": ' + "[" * n + "]" * n + "}")),
    st.sampled_from([Raw('{"minutes": 1e400}'), Raw('{"date": NaN}'), Raw("{"), Raw("")]),
    st.text(max_size=30).map(Raw),
)


def field(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """What a client may put in a field: mostly something like what belongs there."""
    return weighted((9, plausible), (1, JSON))


def bodies(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A JSON object with all of ``fields`` (now and then a stray one too), or only some
    of them, or any JSON at all, or what is no JSON: mostly the first, so that most
    bodies get past the first check to the service behind it."""
    complete = st.builds(
        lambda known, stray: {**stray, **known},
        st.fixed_dictionaries({name: field(s) for name, s in fields.items()}),
        st.dictionaries(TEXTS, JSON, max_size=1),
    )
    partial = st.fixed_dictionaries({}, optional={name: field(s) for name, s in fields.items()})
    return weighted((6, complete), (1, partial), (1, JSON), (1, RAW))


VISIT = {
    "date": DATES,
    "start": TIMES,
    "minutes": number(st.integers(-10, 700)),
    "title": TEXTS,
    "location": TEXTS,
    "mode": st.sampled_from(["in_person", "phone", "video", "teleport"]),
    "override_reason": TEXTS,
}
RULE = {
    "kind": st.sampled_from(["days_before", "hours_before", "same_day", "weekly"]),
    "days": number(st.integers(-3, 400)),
    "hours": number(st.integers(-3, 400)),
    "at": TIMES,
}
REMINDER_SETTINGS = {
    "to_person": st.booleans(),
    "cancellation_notice": st.booleans(),
    "quiet_start": TIMES,
    "quiet_end": TIMES,
}
WINDOW = {
    "kind": st.sampled_from(["suitable", "busy", "never"]),
    "weekdays": st.lists(number(st.integers(-1, 8)), max_size=8),
    "start": TIMES,
    "end": TIMES,
    "label": TEXTS,
}
PREFERENCES = {
    "max_visits_per_day": number(st.integers(-1, 30)),
    "travel_buffer_minutes": number(st.integers(-1, 300)),
    "home_address": TEXTS,
    "windows": st.lists(st.fixed_dictionaries({k: field(v) for k, v in WINDOW.items()})),
}
PUSH = {
    "personnummer": st.sampled_from(["199001012385", "19900101-2385", "198001022386", "x"]),
    "start": INSTANTS,
    "end": INSTANTS,
    "status": st.sampled_from(["booked", "tentative", "cancelled", "gone"]),
    "mode": st.sampled_from(["in_person", "phone", "video", "x"]),
    "transport_needed": st.booleans(),
    "sequence": number(st.integers(-1, 2**31)),
    "title": TEXTS,
    "location": TEXTS,
    "description": TEXTS,
}


# --- The property --------------------------------------------------------------------------


def _send(client: FlaskClient, method: str, url: str, body: Any, **kwargs: Any) -> Any:
    if isinstance(body, Raw):
        data = body.text.encode("utf-8", "surrogatepass")
        return getattr(client, method)(url, data=data, content_type="application/json", **kwargs)
    return getattr(client, method)(url, json=body, **kwargs)


def _answers_without_a_server_error(answer: Any) -> None:
    assert answer.status_code < 500, answer.get_data(as_text=True)
    if answer.status_code >= 400:
        body = answer.get_json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
        assert isinstance(body["error"]["message"], str), body


def _signed_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    log_in(client, role)
    return client


@pytest.mark.parametrize(
    ("role", "method", "path", "fields"),
    [
        ("caregiver", "post", "/api/v1/people/{person}/visits/check", VISIT),
        ("caregiver", "post", "/api/v1/people/{person}/visits", VISIT),
        ("person", "post", "/api/v1/people/{person}/reminders/rules", RULE),
        ("person", "put", "/api/v1/people/{person}/reminders/settings", REMINDER_SETTINGS),
        ("person", "put", "/api/v1/people/{person}/preferences", PREFERENCES),
    ],
    ids=["check", "book", "reminder-rule", "reminder-settings", "preferences"],
)
def test_any_body_gets_a_2xx_or_a_4xx_with_a_code(app, world, role, method, path, fields):
    client = _signed_in(app, role)
    url = path.format(person=world.person_id)

    @SETTINGS
    @given(bodies(fields))
    def sends(body: Any) -> None:
        _answers_without_a_server_error(_send(client, method, url, body))

    sends()


def _day_after(first: date, days: int) -> date:
    try:
        return first + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


PERIODS = st.builds(
    lambda first, days: {"from": first.isoformat(), "to": _day_after(first, days).isoformat()},
    DAYS,
    st.integers(-2, 401),
)
QUERIES = weighted(
    (4, PERIODS),
    (
        1,
        st.fixed_dictionaries({}, optional={"from": TEXTS, "to": weighted((1, DATES), (1, TEXTS))}),
    ),
)


def test_any_period_asked_of_the_calendar_gets_a_2xx_or_a_4xx_with_a_code(app, world):
    client = _signed_in(app, "person")
    url = f"/api/v1/people/{world.person_id}/calendar"

    @SETTINGS
    @given(QUERIES)
    def asks(query: dict[str, str]) -> None:
        # Percent-encoded by hand: a client may send bytes that are no UTF-8 at all.
        sent = "&".join(
            f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in query.items()
        )
        _answers_without_a_server_error(client.get(f"{url}?{sent}"))

    asks()


def test_any_pushed_booking_gets_a_2xx_or_a_4xx_with_a_code(app, world: World, session, now):
    made = tokens.create_token(
        session,
        name="Property",
        provider_id=world.unit_a,
        scopes=["bookings:push"],
        created_by="test",
        now=now,
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {made.secret}"}
    ids = weighted((3, st.sampled_from(["b-1", "b-2"])), (1, TEXTS.filter(bool)))

    @SETTINGS
    @given(ids, bodies(PUSH), st.sampled_from(["put", "put", "get", "delete"]))
    def pushes(external_id: str, body: Any, method: str) -> None:
        url = "/api/v1/push/bookings/" + quote(external_id, safe="", errors="surrogatepass")
        if method == "put":
            answer = _send(client, method, url, body, headers=headers)
        else:
            answer = getattr(client, method)(url, headers=headers)
        _answers_without_a_server_error(answer)

    pushes()
