"""Every endpoint x every role: allowed or refused, and whether the person's audit log
grows. Generated from the app's URL map: an endpoint without an entry here fails."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text

from calendar_app import create_app
from calendar_app.clock import FrozenClock
from calendar_app.db import Base
from calendar_app.domain.reminders import RuleKind
from calendar_app.models import AuditEvent, ReminderRule
from calendar_app.services.calendar import CACHE as calendar_cache
from tests.conftest import NOW, _empty_tables, isolated_url
from tests.support.world import ROLES, World, build_world, log_in

OK, AUDIT, DENY, LOGIN, ABSENT = "ok", "audit", "deny", "login", "absent"


@dataclass(frozen=True)
class Case:
    method: str
    path: Callable[[World], str]
    outcomes: dict[str, str]  # role -> outcome; roles not named get `default`
    default: str = DENY
    form: Callable[[World], dict[str, Any]] | None = None
    json: Callable[[World], dict[str, Any]] | None = None
    ends_at_login: bool = False  # success itself leads to the login page (logging out)
    # Makes what the request needs beyond the world; returns names for the path template.
    prepare: Callable[[Any, World], dict[str, Any]] | None = None

    def outcome(self, role: str) -> str:
        if role in self.outcomes:
            return self.outcomes[role]
        if role == "anonymous":
            return LOGIN
        return self.default


EVERYONE = dict.fromkeys(ROLES, OK)
PEOPLE = {"person": OK, "other_person": OK}
NOWHERE = dict.fromkeys(ROLES, ABSENT)  # e-legitimation is off unless a county configures it
SIGNED_IN = {**dict.fromkeys(ROLES, OK), "anonymous": LOGIN}
VIEWERS = {
    "person": OK,
    "helper_full": AUDIT,
    "helper_time_place": AUDIT,
    "helper_busy": AUDIT,
    "caregiver": AUDIT,
}
SETTINGS_WRITERS = {"person": OK, "helper_settings": OK}
# Booking by the person's id: only a unit that cares for her (the check reads the calendar).
BOOKERS = {"caregiver": AUDIT}
# A first visit, by personnummer: any unit's caregiver (the unrelated one sees busy time).
FIRST_VISIT_BOOKERS = {"caregiver": AUDIT, "caregiver_unrelated": AUDIT}
# Who may read the person's bookings; the short link is "not found" to anyone else.
BOOKING_READERS = {
    "person": OK,
    "helper_full": OK,
    "helper_time_place": OK,
    "helper_busy": OK,
    "caregiver": OK,
}
FREE_SLOT = {"date": "2026-12-02", "start": "13:00", "minutes": 30}

P = "/people/{w.person_id}"


def path(template: str) -> Callable[..., str]:
    return lambda w, **extra: template.format(w=w, **extra)


def a_reminder_rule(session, world: World) -> dict[str, Any]:
    rule = ReminderRule(
        person_id=world.person_id,
        kind=RuleKind.HOURS_BEFORE,
        hours=3,
        created_utc=datetime(2026, 11, 23, tzinfo=UTC),
    )
    session.add(rule)
    session.commit()
    return {"rule_id": rule.id}


def a_personal_source(session, world: World) -> dict[str, Any]:
    """One of the person's own calendars, at an address the fetch refuses at once."""
    from calendar_app import sealing
    from calendar_app.models import ProviderKind, Source
    from calendar_app.services.directory import get_or_add_provider

    unit = get_or_add_provider(session, "Min kalender", ProviderKind.PERSONAL)
    source = Source(
        provider_id=unit.id,
        person_id=world.person_id,
        name="Jobbet",
        adapter="ics_url",
        settings='{"display": "https://192.0.2.10/…"}',
        secrets=sealing.seal({"url": "https://192.0.2.10/x.ics"}, "test-secret"),
    )
    session.add(source)
    session.commit()
    return {"source_id": source.id}


def a_held_read(session, world: World) -> dict[str, Any]:
    from calendar_app.domain.bookings import ReadResult, read_to_json
    from calendar_app.models import ReviewState, SourceReview

    names = a_personal_source(session, world)
    at = datetime(2026, 11, 23, tzinfo=UTC)
    review = SourceReview(
        source_id=names["source_id"],
        person_id=world.person_id,
        state=ReviewState.PENDING,
        created_utc=at,
        read_utc=at,
        read_hash="0" * 64,
        payload=read_to_json(ReadResult(bookings=())),
        future_before=2,
        would_cancel=2,
        would_add=0,
        would_update=0,
    )
    session.add(review)
    session.commit()
    return {**names, "review_id": review.id}


def a_photo(session, world: World) -> dict[str, Any]:
    """A practitioner photo as a read stores it."""
    from io import BytesIO

    from PIL import Image

    from calendar_app.domain.photos import reencode
    from calendar_app.services import photos

    out = BytesIO()
    Image.new("RGB", (64, 80), "teal").save(out, "PNG")
    photo = reencode(out.getvalue())
    photos.store(session, [photo], datetime(2026, 11, 23, tzinfo=UTC))
    session.commit()
    return {"digest": photo.digest}


def a_feed(session, world: World) -> dict[str, Any]:
    """A feed of the person's, made at the command line."""
    from calendar_app.services import feeds
    from calendar_app.services.access import Actor

    made = feeds.create_feed(session, Actor.operator(), world.person_id, level="full", now=NOW)
    return {"token": made.token, "feed_id": made.id}


# A helper who may see the calendar makes and lists only their own feeds (audited); one who
# manages the settings sees and stops every feed but makes none without the right to see.
FEED_VIEWERS = {
    "person": OK,
    "helper_full": AUDIT,
    "helper_time_place": AUDIT,
    "helper_busy": AUDIT,
    "helper_settings": AUDIT,
}
FEED_MAKERS = {"person": OK, "helper_full": AUDIT, "helper_time_place": AUDIT, "helper_busy": AUDIT}
# Another's feed is no feed of a helper's: 404, as for a revoked one.
FEED_MANAGERS = {
    "person": OK,
    "helper_settings": OK,
    "helper_full": ABSENT,
    "helper_time_place": ABSENT,
    "helper_busy": ABSENT,
}
SOURCE_READERS = {"person": OK, "helper_settings": AUDIT, "admin": AUDIT}
BLOCKED_URL = {"url": "https://192.0.2.10/x.ics", "name": "Jobbet"}

MATRIX: dict[str, Case] = {
    "sources.page": Case("GET", path(P + "/sources"), SOURCE_READERS),
    # The address is refused (a documentation network): the answer is a redirect either way.
    "sources.add": Case(
        "POST",
        path(P + "/sources"),
        {**SETTINGS_WRITERS, "admin": OK},
        form=lambda w: BLOCKED_URL,
    ),
    "sources.remove": Case(
        "POST",
        path(P + "/sources/{source_id}/remove"),
        {**SETTINGS_WRITERS, "admin": OK},
        prepare=a_personal_source,
    ),
    "sources.sync_now": Case(
        "POST", path(P + "/sources/{source_id}/sync"), SOURCE_READERS, prepare=a_personal_source
    ),
    "sources.review": Case(
        "GET", path(P + "/reviews/{review_id}"), SOURCE_READERS, prepare=a_held_read
    ),
    "sources.admin_list": Case("GET", path("/admin/sources"), {"admin": OK}),
    "sources.admin_pause": Case(
        "POST",
        path("/admin/sources/{source_id}/pause"),
        {"admin": OK},
        prepare=a_personal_source,
    ),
    # A picture of a practitioner, not of the person: anyone signed in, nothing audited.
    "photos.show": Case("GET", path("/photos/{digest}.jpg"), SIGNED_IN, prepare=a_photo),
    "feeds.page": Case("GET", path(P + "/feeds"), FEED_VIEWERS),
    "feeds.create": Case("POST", path(P + "/feeds"), FEED_MAKERS, form=lambda w: {"level": "busy"}),
    "feeds.revoke": Case(
        "POST", path(P + "/feeds/{feed_id}/revoke"), FEED_MANAGERS, prepare=a_feed
    ),
    "feeds.rotate": Case(
        "POST", path(P + "/feeds/{feed_id}/rotate"), FEED_MANAGERS, prepare=a_feed
    ),
    "feeds.booking_file": Case("GET", path(P + "/bookings/{w.booking_a}/calendar.ics"), VIEWERS),
    "health.healthz": Case("GET", path("/healthz"), EVERYONE),
    # Probes for balancers and orchestrators: no login, no personal data.
    "health.livez": Case("GET", path("/livez"), EVERYONE),
    "health.readyz": Case("GET", path("/readyz"), EVERYONE),
    # Without CALENDAR_APP_METRICS_TOKEN, any client on this host (the test client is on
    # loopback); the token and other hosts are in tests/ops/test_observability.py.
    "metrics.scrape": Case("GET", path("/metrics"), EVERYONE),
    "admin.health": Case("GET", path("/admin/health"), {"admin": OK}),
    "auth.login": Case("GET", path("/login"), EVERYONE),
    "auth.logout": Case("POST", path("/logout"), EVERYONE, ends_at_login=True),
    "auth.language": Case("POST", path("/language"), EVERYONE, form=lambda w: {"lang": "en"}),
    "auth.easy_read": Case("POST", path("/easy-read"), EVERYONE, form=lambda w: {"easy": "on"}),
    "auth.oidc_start": Case("POST", path("/login/e-legitimation"), NOWHERE),
    "auth.oidc_callback": Case("GET", path("/login/e-legitimation/callback"), NOWHERE),
    "auth.logout_everywhere": Case(
        "POST", path("/logout/everywhere"), EVERYONE, ends_at_login=True
    ),
    "auth.account": Case("GET", path("/account"), SIGNED_IN),
    # Without a file: the caregiver is sent back with the reason, nothing stored.
    "auth.own_photo": Case(
        "POST", path("/account/photo"), {"caregiver": OK, "caregiver_unrelated": OK}
    ),
    # Delivery reports exist only with Twilio configured (and are signed, not signed in).
    "webhooks.twilio_status": Case("POST", path("/webhooks/twilio/status"), NOWHERE),
    "webhooks.twilio_inbound": Case("POST", path("/webhooks/twilio/inbound"), NOWHERE),
    # The related caregiver's unit has a visit with the person that day: one audit row.
    "booking.unit_day": Case(
        "GET", path("/unit/day?day=2026-12-02"), {"caregiver": AUDIT, "caregiver_unrelated": OK}
    ),
    "booking.unit_messages": Case(
        "GET", path("/unit/messages"), {"caregiver": OK, "caregiver_unrelated": OK}
    ),
    # Every person, of their own data: the id comes from the account, never the URL.
    "rights.export_json": Case("GET", path("/account/export.json"), PEOPLE),
    "rights.export_ics": Case("GET", path("/account/export.ics"), PEOPLE),
    "rights.delete": Case("GET", path("/account/delete"), PEOPLE),
    "admin.api_tokens": Case("GET", path("/admin/api-tokens"), {"admin": OK}),
    "admin.revoke_api_token": Case("POST", path("/admin/api-tokens/999/revoke"), {"admin": OK}),
    "person.home": Case("GET", path("/"), SIGNED_IN),
    "person.week": Case("GET", path(P + "/week"), VIEWERS),
    "overview.page": Case("GET", path(P + "/overview"), VIEWERS),
    "overview.pdf": Case("GET", path(P + "/overview.pdf"), VIEWERS),
    "person.today": Case("GET", path(P + "/today?day=2026-12-02"), VIEWERS),
    "person.month": Case("GET", path(P + "/month?start=2026-12-01"), VIEWERS),
    "person.agenda": Case("GET", path(P + "/agenda"), VIEWERS),
    "person.booking": Case("GET", path(P + "/bookings/{w.booking_a}"), VIEWERS),
    "person.review": Case("GET", path(P + "/review"), VIEWERS),
    "person.import_file": Case("GET", path(P + "/import"), {"person": OK, "caregiver": OK}),
    "settings.page": Case("GET", path(P + "/settings"), {"person": OK, "helper_settings": AUDIT}),
    "settings.unit_consent": Case(
        "POST",
        path(P + "/settings/units/{w.unit_a}"),
        SETTINGS_WRITERS,
        form=lambda w: {"others_level": "full"},
    ),
    "settings.add_relationship": Case(
        "POST",
        path(P + "/settings/relationships"),
        {**SETTINGS_WRITERS, "admin": OK},
        form=lambda w: {"provider_id": str(w.unit_c)},
    ),
    "settings.end_relationship": Case(
        "POST", path(P + "/settings/relationships/{w.relationship_b}/end"), SETTINGS_WRITERS
    ),
    # The answer is the settings page with the new code: a helper reading it is audited.
    "settings.invite": Case(
        "POST",
        path(P + "/settings/helpers"),
        {"person": OK, "helper_settings": AUDIT},
        form=lambda w: {
            "name": "Sam",
            "contact": "sam@example.se",
            "basis": "narstaende",
            "view_level": "busy",
        },
    ),
    "settings.withdraw": Case(
        "POST", path(P + "/settings/helpers/{w.grant_busy}/withdraw"), SETTINGS_WRITERS
    ),
    "settings.preferences_page": Case(
        "GET", path(P + "/preferences"), {"person": OK, "helper_settings": AUDIT}
    ),
    "settings.add_window": Case(
        "POST",
        path(P + "/preferences/windows"),
        SETTINGS_WRITERS,
        form=lambda w: {
            "kind": "busy",
            "label": "Arbete",
            "weekday": ["0", "1"],
            "start": "08:00",
            "end": "16:00",
        },
    ),
    "settings.remove_window": Case(
        "POST", path(P + "/preferences/windows/{w.window_id}/delete"), SETTINGS_WRITERS
    ),
    "api.get_preferences": Case(
        "GET", path("/api/v1" + P + "/preferences"), {"person": OK, "helper_settings": AUDIT}
    ),
    # The answer shows the saved preferences back: a helper reading them is audited.
    "api.put_preferences": Case(
        "PUT",
        path("/api/v1" + P + "/preferences"),
        {"person": OK, "helper_settings": AUDIT},
        json=lambda w: {"max_visits_per_day": 2, "travel_buffer_minutes": 45},
    ),
    "settings.audit": Case("GET", path(P + "/audit"), {"person": OK}),
    "reminders.page": Case("GET", path(P + "/reminders"), {"person": OK, "helper_settings": AUDIT}),
    "reminders.add_rule": Case(
        "POST",
        path(P + "/reminders/rules"),
        SETTINGS_WRITERS,
        form=lambda w: {"kind": "hours_before", "hours": "3"},
    ),
    "reminders.remove_rule": Case(
        "POST", path(P + "/reminders/rules/999/delete"), SETTINGS_WRITERS
    ),
    "reminders.settings": Case(
        "POST",
        path(P + "/reminders/settings"),
        SETTINGS_WRITERS,
        form=lambda w: {"to_person": "on", "quiet_start": "21.00", "quiet_end": "08.00"},
    ),
    # The person in the world has no mobile number: the answer says so (a redirect).
    "reminders.send_test": Case("POST", path(P + "/reminders/test"), SETTINGS_WRITERS),
    "reminders.short_link": Case("GET", path("/b/{w.booking_a}"), BOOKING_READERS, default=ABSENT),
    "api.get_reminders": Case(
        "GET", path("/api/v1" + P + "/reminders"), {"person": OK, "helper_settings": AUDIT}
    ),
    # Writes answer with the re-planned view: a helper reading it back is audited.
    "api.add_reminder_rule": Case(
        "POST",
        path("/api/v1" + P + "/reminders/rules"),
        {"person": OK, "helper_settings": AUDIT},
        json=lambda w: {"kind": "days_before", "days": 2, "at": "18:00"},
    ),
    "api.remove_reminder_rule": Case(
        "DELETE",
        path("/api/v1" + P + "/reminders/rules/{rule_id}"),
        {"person": OK, "helper_settings": AUDIT},
        prepare=a_reminder_rule,
    ),
    "api.put_reminder_settings": Case(
        "PUT",
        path("/api/v1" + P + "/reminders/settings"),
        {"person": OK, "helper_settings": AUDIT},
        json=lambda w: {"to_person": True, "quiet_start": "21:00", "quiet_end": "08:00"},
    ),
    "api.put_unit_reminders": Case(
        "PUT",
        path("/api/v1" + P + "/reminders/units/{w.unit_a}"),
        {"person": OK, "helper_settings": AUDIT},
        json=lambda w: {"reminders": False},
    ),
    "reminders.unit": Case(
        "POST",
        path(P + "/reminders/units/{w.unit_a}"),
        SETTINGS_WRITERS,
        form=lambda w: {"on": "0"},
    ),
    "settings.invitation": Case("GET", path("/invitation"), EVERYONE),
    "settings.court_helper": Case("GET", path("/admin/court-helpers"), {"admin": OK}),
    "admin.protected_identity": Case("GET", path("/admin/protected-identity"), {"admin": OK}),
    "settings.audit_export": Case("GET", path("/admin/audit-export"), {"admin": OK}),
    "booking.book": Case("GET", path(P + "/book"), {"caregiver": OK}),
    "booking.first_visit": Case(
        "GET", path("/unit/first-visit"), {"caregiver": OK, "caregiver_unrelated": OK}
    ),
    "api.check_first_visit": Case(
        "POST",
        path("/api/v1/first-visits/check"),
        FIRST_VISIT_BOOKERS,
        json=lambda w: {**FREE_SLOT, "personnummer": w.pnr},
    ),
    "api.create_first_visit": Case(
        "POST",
        path("/api/v1/first-visits"),
        FIRST_VISIT_BOOKERS,
        json=lambda w: {**FREE_SLOT, "personnummer": w.pnr},
    ),
    "api.check_proposed_visit": Case(
        "POST", path("/api/v1" + P + "/visits/check"), BOOKERS, json=lambda w: FREE_SLOT
    ),
    "api.create_visit": Case(
        "POST", path("/api/v1" + P + "/visits"), BOOKERS, json=lambda w: FREE_SLOT
    ),
    "api.suggest_visits": Case(
        "POST",
        path("/api/v1" + P + "/visits/suggest"),
        BOOKERS,
        json=lambda w: {"minutes": 30, "from": "2026-12-01", "to": "2026-12-03"},
    ),
    "api.put_opening_hours": Case(
        "PUT",
        path("/api/v1/units/{w.unit_a}/opening-hours"),
        {"caregiver": OK, "admin": OK},
        json=lambda w: {"windows": [{"weekdays": [0, 1], "start": "08:00", "end": "12:00"}]},
    ),
    "api.rebook": Case(
        "PUT",
        path("/api/v1/bookings/{w.native_booking}"),
        {"caregiver": AUDIT},
        json=lambda w: FREE_SLOT,
    ),
    "api.cancel": Case("DELETE", path("/api/v1/bookings/{w.native_booking}"), {"caregiver": OK}),
    "api.openapi": Case("GET", path("/api/v1/openapi.json"), EVERYONE),
    "api.me": Case("GET", path("/api/v1/me"), SIGNED_IN),
    "api.calendar": Case(
        "GET", path("/api/v1" + P + "/calendar?from=2026-12-01&to=2026-12-08"), VIEWERS
    ),
    "api.settings": Case(
        "GET", path("/api/v1" + P + "/settings"), {"person": OK, "helper_settings": AUDIT}
    ),
    "api.put_consent": Case(
        "PUT",
        path("/api/v1" + P + "/consents/{w.unit_a}"),
        SETTINGS_WRITERS,
        json=lambda w: {"others_level": "time_place", "sensitive": True},
    ),
    "api.audit": Case(
        "GET", path("/api/v1" + P + "/audit?from=2026-01-01&to=2027-01-01"), {"person": OK}
    ),
    "api.busy": Case(
        "POST",
        path("/api/v1/busy"),
        {"caregiver": AUDIT, "caregiver_unrelated": AUDIT},
        json=lambda w: {"personnummer": w.pnr, "from": "2026-12-01", "to": "2026-12-08"},
    ),
    # Provider systems only: a unit's API token with bookings:push (tests/web/test_push_api.py).
    # No signed-in role may push, cancel or read pushed bookings.
    "api.put_pushed_booking": Case(
        "PUT",
        path("/api/v1/push/bookings/BS-417"),
        {},
        json=lambda w: {
            "personnummer": w.pnr,
            "start": "2026-12-02T13:00:00+01:00",
            "end": "2026-12-02T13:30:00+01:00",
        },
    ),
    "api.cancel_pushed_booking": Case("DELETE", path("/api/v1/push/bookings/BS-417"), {}),
    "api.get_pushed_booking": Case("GET", path("/api/v1/push/bookings/BS-417"), {}),
}
NOT_PERSON_DATA = {"static"}


def test_every_endpoint_has_an_entry_in_the_matrix():
    app = create_app({"DATABASE_URL": "sqlite://"})
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} - NOT_PERSON_DATA
    assert sorted(endpoints - set(MATRIX)) == [], "add the new endpoint to MATRIX"
    assert sorted(set(MATRIX) - endpoints) == []


def _audit_count(session, person_id: int) -> int:
    session.rollback()
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.person_id == person_id)
    )


class Snapshot:
    """The database as the world left it, put back before each case.

    Building an app and the world for each of the ~2,000 cases was half of the whole
    suite's time; one app per backend, restored from this snapshot, gives every case the
    same fresh world. SQLite: the online backup API, page by page. PostgreSQL: the rows
    copied to a side schema once; restoring truncates, copies them back with triggers and
    foreign-key checks off (session_replication_role, as a superuser may), and sets each
    sequence where it was.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tables = [table.name for table in Base.metadata.sorted_tables]
        if engine.dialect.name == "sqlite":
            self.copy = sqlite3.connect(":memory:", check_same_thread=False)
            raw = engine.raw_connection()
            try:
                raw.driver_connection.backup(self.copy)  # type: ignore[union-attr]
            finally:
                raw.close()
            return
        self.side = f"snap_{secrets.token_hex(4)}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.side}"'))
            for name in self.tables:
                conn.execute(text(f'CREATE TABLE "{self.side}"."{name}" AS TABLE "{name}"'))
            self.sequences = conn.execute(
                text(
                    "SELECT sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = current_schema()"
                )
            ).all()

    def restore(self) -> None:
        calendar_cache.clear()
        if self.engine.dialect.name == "sqlite":
            raw = self.engine.raw_connection()
            try:
                self.copy.backup(raw.driver_connection)  # type: ignore[arg-type]
            finally:
                raw.close()
            return
        names = ", ".join(f'"{name}"' for name in self.tables)
        with self.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            for name in self.tables:
                conn.execute(text(f'INSERT INTO "{name}" SELECT * FROM "{self.side}"."{name}"'))
            for sequence, last in self.sequences:
                if last is not None:
                    conn.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": last})

    def drop(self) -> None:
        if self.engine.dialect.name == "sqlite":
            self.copy.close()
            return
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.side}" CASCADE'))


@dataclass
class Matrix:
    app: Flask
    world: World
    snapshot: Snapshot


@pytest.fixture(scope="module")
def matrix(database_url, tmp_path_factory) -> Iterator[Matrix]:
    """One app and one world per backend for every case of the matrix."""
    folder = tmp_path_factory.mktemp("matrix")
    url = isolated_url(database_url, folder)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,  # ~170 sign-ins from one address per role
        },
        clock=FrozenClock(NOW),
    )
    app.instance_path = str(folder)
    # Feeds rendered ahead would write behind a restore's back; fetches render anyway.
    app.extensions["feed_renderer"].stop()
    calendar_cache.clear()
    engine = app.extensions["engine"]
    with app.extensions["session_factory"]() as session:
        world = build_world(session, NOW)
        session.commit()
    snapshot = Snapshot(engine)
    try:
        yield Matrix(app, world, snapshot)
    finally:
        snapshot.drop()
        if engine.dialect.name == "postgresql":
            _empty_tables(app)
        engine.dispose()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_authorization_matrix(endpoint, role, matrix):
    case = MATRIX[endpoint]
    matrix.snapshot.restore()
    client = matrix.app.test_client()
    world = matrix.world
    with matrix.app.extensions["session_factory"]() as session:
        _check(case, role, client, session, world)


def _check(case: Case, role: str, client, session, world: World) -> None:
    extra = case.prepare(session, world) if case.prepare else {}
    log_in(client, role)
    before = _audit_count(session, world.person_id)
    session.commit()
    kwargs: dict[str, Any] = {}
    if case.form:
        kwargs["data"] = case.form(world)
    if case.json:
        kwargs["json"] = case.json(world)
    response = client.open(case.path(world, **extra), method=case.method, **kwargs)
    expected = case.outcome(role)
    status = response.status_code
    if expected == ABSENT:
        assert status == 404, status
    elif expected == LOGIN:
        assert status == 401 or (status == 302 and "/login" in response.location), status
    elif expected == DENY:
        assert status == 403, (status, response.get_data(as_text=True)[:300])
    else:
        assert status in (200, 201, 302), (status, response.get_data(as_text=True)[:300])
        if status == 302 and not case.ends_at_login:
            assert "/login" not in response.location
    audited = _audit_count(session, world.person_id) - before
    assert audited == (1 if expected == AUDIT else 0), f"audit rows added: {audited}"
