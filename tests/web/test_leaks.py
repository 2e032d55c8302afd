"""Every surface x every viewer: nothing a viewer may not see reaches the bytes they get.

Each unit's visits carry a marker string in every field a surface could show (title, place,
notes, whom the person meets, photo, interpreter's language, terms, fee, kinds of care and
time, UID, source, and the unit's own name, phone, contact and address). For each viewer
the rules of DESIGN §4, written out again here independently of the code (see
``visible``), say which fields of which unit they may see; every response of every surface
is searched for the markers of all other fields. A failing source of each unit puts its
"could not be fetched" banner on the pages, and reminders go out as SMS.

Like the authorization matrix, the list of surfaces is checked against the app's URL map:
an endpoint that is neither a surface here nor listed in ``NO_VISIT_DATA`` (with the
reason) fails ``test_every_endpoint_is_a_surface_here_or_shows_no_visits``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from calendar_app import create_app
from calendar_app.models import (
    Booking,
    HelperGrant,
    Person,
    Provider,
    ProviderKind,
    Source,
    SourceState,
    UnitConsent,
    ViewLevel,
)
from calendar_app.services import feeds, reminders
from calendar_app.services.access import Actor
from calendar_app.services.dispatch import DispatchSettings, dispatch_due
from tests.conftest import NOW
from tests.support.dispatch_fakes import FakeSender
from tests.support.helpers import do_import, event, vcalendar
from tests.support.world import World, build_world, log_in

# The person's units: A is the signed-in caregiver's own, C may be marked sensitive, P is the
# person's own calendar (her work), which only she sees in detail.
UNITS = ("A", "B", "C", "P")
FIELDS = (
    "NAME", "TEL", "CONTACT", "ADDR",  # the unit
    "TITLE", "PLACE", "DESC", "PRACT", "PHOTO", "LANG", "TERMS", "FEE", "CARE", "TTYPE",
    "UID", "SRC",
)  # fmt: skip
UNIT_FIELDS = {"NAME", "TEL", "CONTACT", "ADDR"}
TIME_AND_PLACE = UNIT_FIELDS | {"PLACE"}
PHOTO_DIGITS = {"A": "a", "B": "b", "C": "c", "P": "d"}


def marker(unit: str, name: str) -> str:
    """The marker of one field of one unit's visits (a photo is a 64-digit hex digest)."""
    if name == "PHOTO":
        return PHOTO_DIGITS[unit] * 64
    return f"{name}{unit}zq"


# Wednesday of NOW's week, local times: A 10-11 and B 10.30-11.30 overlap, C 13-14, P 16-17.
STARTS = {"A": "20261125T090000Z", "B": "20261125T093000Z", "C": "20261125T120000Z",
          "P": "20261125T150000Z"}  # fmt: skip
ENDS = {"A": "20261125T100000Z", "B": "20261125T103000Z", "C": "20261125T130000Z",
        "P": "20261125T160000Z"}  # fmt: skip
KINDS = {"A": ProviderKind.REGION, "B": ProviderKind.MUNICIPALITY, "C": ProviderKind.REGION,
         "P": ProviderKind.PERSONAL}  # fmt: skip
WEDNESDAY = "2026-11-25"


@dataclass(frozen=True)
class Viewer:
    """Who looks, and what the person chose: her consent for the caregiver's unit to see
    other units (``others``), unit C marked sensitive, her identity protected."""

    role: str
    others: ViewLevel = ViewLevel.BUSY
    sensitive: bool = False
    protected: bool = False

    @property
    def id(self) -> str:
        flags = [self.role]
        if self.role == "caregiver":
            flags.append(f"others-{self.others.value}")
        flags += [
            f for f, on in (("sensitive", self.sensitive), ("protected", self.protected)) if on
        ]
        return "-".join(flags)


VIEWERS = [
    Viewer("person"),
    Viewer("person", sensitive=True, protected=True),
    Viewer("helper_full"),
    Viewer("helper_time_place"),
    Viewer("helper_time_place", sensitive=True, protected=True),
    Viewer("helper_busy"),
    Viewer("helper_settings"),
    Viewer("caregiver", ViewLevel.BUSY),
    Viewer("caregiver", ViewLevel.TIME_PLACE),
    Viewer("caregiver", ViewLevel.TIME_PLACE, sensitive=True),
    Viewer("caregiver", ViewLevel.TIME_PLACE, protected=True),
    Viewer("caregiver", ViewLevel.FULL),
    Viewer("caregiver", ViewLevel.FULL, sensitive=True, protected=True),
    Viewer("caregiver_unrelated"),
]
HELPER_LEVELS = {
    "helper_full": ViewLevel.FULL,
    "helper_time_place": ViewLevel.TIME_PLACE,
    "helper_busy": ViewLevel.BUSY,
}


def at_level(level: ViewLevel, *, sensitive: bool, place: bool) -> set[str]:
    """The fields a level shows of a unit (DESIGN §4, "Privacy", as the settings explain it)."""
    if level == ViewLevel.BUSY:
        return set()
    shown = set(FIELDS) if level == ViewLevel.FULL else set(TIME_AND_PLACE)
    if sensitive and level != ViewLevel.FULL:
        shown -= UNIT_FIELDS  # named neutrally
    if not place:
        shown -= {"PLACE", "ADDR"}
    return shown


def visible(viewer: Viewer, unit: str) -> set[str]:
    """What ``viewer`` may see of ``unit``'s visits on the service's own pages and API."""
    sensitive = viewer.sensitive and unit == "C"
    if viewer.role == "person":
        return set(FIELDS)
    if unit == "P":
        return set()  # the person's own calendars are busy time to everyone else
    if viewer.role in HELPER_LEVELS:
        return at_level(HELPER_LEVELS[viewer.role], sensitive=sensitive, place=True)
    if viewer.role == "helper_settings":
        # Manages her settings without seeing the calendar: the units she cares for are
        # named there (to set what each may see), nothing of their visits.
        return {"NAME"}
    if viewer.role == "caregiver":
        if unit == "A":
            return set(FIELDS)
        return at_level(viewer.others, sensitive=sensitive, place=not viewer.protected)
    return set()  # a unit reaching the person by personnummer: busy time only


def hidden_markers(shown: Callable[[str], set[str]]) -> dict[str, str]:
    """Marker -> "unit field" for every field ``shown`` does not let through."""
    return {
        marker(unit, name): f"{unit} {name}"
        for unit in UNITS
        for name in FIELDS
        if name not in shown(unit)
    }


# --- the world ----------------------------------------------------------------------------


@dataclass
class Marked:
    """The world with every unit's visits marked, and what the surfaces need."""

    world: World
    units: dict[str, int] = field(default_factory=dict)
    bookings: dict[str, int] = field(default_factory=dict)


HELPER_PHONES = {"helper_full": "+46709990001", "helper_time_place": "+46709990002",
                 "helper_busy": "+46709990003", "helper_reminders": "+46709990004"}  # fmt: skip


def mark_world(session, viewer: Viewer) -> Marked:
    """Build the world and give each unit marked visits, a failing source and a consent.

    A is the world's Vuxenpsykiatrin (the signed-in caregiver's unit), B its Boendestöd,
    C a unit of its own (not the unrelated caregiver's: that one must stay unrelated), P the
    person's own calendar.
    """
    world = build_world(session, NOW)
    person = session.get(Person, world.person_id)
    person.protected_identity = viewer.protected
    person.phone_e164 = "+46701112233"
    session.commit()
    found = Marked(world)
    names = {
        "A": session.get(Provider, world.unit_a).name,
        "B": session.get(Provider, world.unit_b).name,
        "C": marker("C", "NAME"),
        "P": marker("P", "NAME"),
    }
    for unit in UNITS:
        body = vcalendar(
            event(
                marker(unit, "UID"),
                ":" + STARTS[unit],
                ":" + ENDS[unit],
                marker(unit, "TITLE"),
                LOCATION=marker(unit, "PLACE"),
                DESCRIPTION=marker(unit, "DESC"),
                X_PK_PRACTITIONER=marker(unit, "PRACT"),
                X_PK_INTERPRETER=marker(unit, "LANG"),
                X_PK_CANCELLATION=marker(unit, "TERMS"),
                X_PK_NO_SHOW_FEE=marker(unit, "FEE"),
            )
        )
        do_import(session, person, body, NOW, provider=names[unit], kind=KINDS[unit],
                  source=marker(unit, "SRC"))  # fmt: skip
        provider = session.scalars(select(Provider).where(Provider.name == names[unit])).one()
        provider.name = marker(unit, "NAME")
        provider.phone = marker(unit, "TEL")
        provider.contact_name = marker(unit, "CONTACT")
        provider.address = marker(unit, "ADDR")
        found.units[unit] = provider.id
        booking = session.scalars(select(Booking).where(Booking.uid == marker(unit, "UID"))).one()
        booking.practitioner_photo = marker(unit, "PHOTO")
        booking.care_type = marker(unit, "CARE")
        booking.time_type = marker(unit, "TTYPE")
        found.bookings[unit] = booking.id
        session.add(
            Source(
                provider_id=provider.id,
                person_id=world.person_id,
                name="hämtning",
                adapter="ics_url",
                settings='{"display": "https://bokning.example.se/…"}',
                state=SourceState.FAILING,
                failures=4,
                last_success_utc=NOW - timedelta(hours=5),
                created_utc=NOW - timedelta(days=30),
            )
        )
        if unit != "P":
            session.add(
                UnitConsent(
                    person_id=world.person_id,
                    provider_id=provider.id,
                    # What A's caregivers see of the other units.
                    others_level=viewer.others if unit == "A" else ViewLevel.BUSY,
                    sensitive=viewer.sensitive and unit == "C",
                    named_in_sms=True,
                    changed_utc=NOW,
                )
            )
        session.commit()  # the next import starts by rolling back what is not committed
    # Everyone who may see the calendar also gets reminders, each on a number of their own
    # (SMS is a surface too).
    for grant in session.scalars(
        select(HelperGrant).where(HelperGrant.person_id == world.person_id)
    ):
        if grant.helper_name in HELPER_PHONES:
            grant.receives_reminders = True
            grant.contact = HELPER_PHONES[grant.helper_name]
    session.execute(
        update(Person)
        .where(Person.id == world.person_id)
        .values(calendar_version=Person.calendar_version + 1)
    )
    session.commit()
    reminders.replan(session, world.person_id, now=NOW)
    session.commit()
    return found


# --- the surfaces ---------------------------------------------------------------------------

Bodies = list[tuple[str, bytes]]  # (what was asked, the bytes answered)


@dataclass
class Ctx:
    app: Flask
    client: FlaskClient
    session: Any
    marked: Marked
    viewer: Viewer

    @property
    def p(self) -> int:
        return self.marked.world.person_id

    def get(self, path: str) -> Bodies:
        return [(path, self.client.get(path).data)]

    def post(self, path: str, **kw: Any) -> Bodies:
        return [(path, self.client.post(path, **kw).data)]


# A time overlapping each unit's visit, and one just after B's (travel time), Wednesday.
DRAFTS = [
    {"date": WEDNESDAY, "start": "10:15", "minutes": 30, "location": "Storgatan 1, 352 30 Växjö"},
    {"date": WEDNESDAY, "start": "11:35", "minutes": 30, "location": "Storgatan 1, 352 30 Växjö"},
    {"date": WEDNESDAY, "start": "13:30", "minutes": 30},
    {"date": WEDNESDAY, "start": "16:30", "minutes": 30},
]


def _each_booking(ctx: Ctx, template: str) -> Bodies:
    return [
        item
        for booking in ctx.marked.bookings.values()
        for item in ctx.get(template.format(p=ctx.p, b=booking))
    ]


def _api_checks(ctx: Ctx) -> Bodies:
    path = f"/api/v1/people/{ctx.p}/visits"
    answers = []
    for draft in DRAFTS:
        answers += ctx.post(path + "/check", json=draft)
        answers += ctx.post(path, json=draft)  # clashes: the refusal names what it clashes with
    answers += ctx.post(
        path + "/suggest",
        json={"minutes": 30, "from": WEDNESDAY, "to": WEDNESDAY, "location": "Hemma"},
    )
    return answers


def _first_visit_checks(ctx: Ctx) -> Bodies:
    answers = []
    for draft in DRAFTS:
        body = {**draft, "personnummer": ctx.marked.world.pnr}
        answers += ctx.post("/api/v1/first-visits/check", json=body)
        answers += ctx.post("/api/v1/first-visits", json=body)
    return answers


def _booking_page(ctx: Ctx, path: str, extra: dict[str, str]) -> Bodies:
    answers = []
    for draft in DRAFTS:
        form = {**{k: str(v) for k, v in draft.items()}, **extra}
        answers += ctx.post(path, data={**form, "action": "check"})
        answers += ctx.post(path, data={**form, "action": "book"})
    answers += ctx.post(path, data={**DRAFTS[0], "minutes": "30", "action": "suggest", **extra})
    return answers


SURFACES: dict[str, Callable[[Ctx], Bodies]] = {
    "person.home": lambda c: c.get("/"),
    "person.week": lambda c: c.get(f"/people/{c.p}/week?start={WEDNESDAY}"),
    "person.today": lambda c: c.get(f"/people/{c.p}/today?day={WEDNESDAY}"),
    "person.month": lambda c: c.get(f"/people/{c.p}/month?month=2026-11"),
    "person.agenda": lambda c: c.get(f"/people/{c.p}/agenda?from=2026-11-23"),
    "person.review": lambda c: c.get(f"/people/{c.p}/review"),
    "person.booking": lambda c: _each_booking(c, "/people/{p}/bookings/{b}"),
    "feeds.booking_file": lambda c: _each_booking(c, "/people/{p}/bookings/{b}/calendar.ics"),
    "reminders.short_link": lambda c: _each_booking(c, "/b/{b}"),
    "overview.page": lambda c: c.get(f"/people/{c.p}/overview"),
    "overview.pdf": lambda c: c.get(f"/people/{c.p}/overview.pdf"),
    "api.calendar": lambda c: c.get(f"/api/v1/people/{c.p}/calendar?from=2026-11-23&to=2026-11-30"),
    "api.check_proposed_visit": _api_checks,
    "api.create_visit": _api_checks,
    "api.suggest_visits": _api_checks,
    "api.check_first_visit": _first_visit_checks,
    "api.create_first_visit": _first_visit_checks,
    "api.busy": lambda c: c.post(
        "/api/v1/busy",
        json={"personnummer": c.marked.world.pnr, "from": "2026-11-23", "to": "2026-11-30"},
    ),
    "api.rebook": lambda c: [
        (
            f"rebook to {draft['start']}",
            c.client.put(f"/api/v1/bookings/{c.marked.world.native_booking}", json=draft).data,
        )
        for draft in DRAFTS
    ],
    "booking.book": lambda c: _booking_page(c, f"/people/{c.p}/book", {}),
    "booking.first_visit": lambda c: _booking_page(
        c, "/unit/first-visit", {"personnummer": c.marked.world.pnr}
    ),
    "booking.unit_day": lambda c: c.get(f"/unit/day?day={WEDNESDAY}"),
    "booking.unit_messages": lambda c: c.get("/unit/messages"),
    "api.get_reminders": lambda c: c.get(f"/api/v1/people/{c.p}/reminders"),
    "reminders.page": lambda c: c.get(f"/people/{c.p}/reminders"),
    "api.settings": lambda c: c.get(f"/api/v1/people/{c.p}/settings"),
    "settings.page": lambda c: c.get(f"/people/{c.p}/settings"),
    "settings.audit": lambda c: c.get(f"/people/{c.p}/audit"),
    "api.audit": lambda c: c.get(f"/api/v1/people/{c.p}/audit?from=2026-01-01&to=2027-01-01"),
    "sources.page": lambda c: c.get(f"/people/{c.p}/sources"),
    "feeds.page": lambda c: c.get(f"/people/{c.p}/feeds"),
    "rights.export_json": lambda c: c.get("/account/export.json"),
    "rights.export_ics": lambda c: c.get("/account/export.ics"),
    "api.me": lambda c: c.get("/api/v1/me"),
}
# Responses that answer with the same view as a surface above.
SAME_AS = {
    "api.add_reminder_rule": "api.get_reminders",
    "api.remove_reminder_rule": "api.get_reminders",
    "api.put_reminder_settings": "api.get_reminders",
    "api.put_unit_reminders": "api.get_reminders",
    "api.put_consent": "api.settings",
    "sources.review": "sources.page",
}
# Endpoints that show no visit of anyone's: why each is safe to leave out.
NO_VISIT_DATA = {
    "static": "files of the service itself",
    "health.healthz": "the service's health",
    "health.livez": "the service's health",
    "health.readyz": "the service's health",
    "metrics.scrape": "counters by route; tested for personal data in tests/ops",
    "api.openapi": "the API's description",
    "auth.login": "the sign-in form",
    "auth.logout": "ends a session, answers with a redirect",
    "auth.logout_everywhere": "ends sessions, answers with a redirect",
    "auth.oidc_start": "a redirect to the identity broker",
    "auth.oidc_callback": "signs in, answers with a redirect",
    "auth.account": "the signed-in user's own sessions and photo",
    "auth.own_photo": "stores the user's own photo, answers with a redirect",
    "auth.language": "a preference, answers with a redirect",
    "auth.easy_read": "a preference, answers with a redirect",
    "photos.show": "a photo by its digest: the digest itself is what a page may or may not show",
    "admin.api_tokens": "tokens per unit; administrators see no calendar",
    "admin.revoke_api_token": "answers with a redirect",
    "admin.health": "counts per unit and adapter; no visit",
    "admin.protected_identity": "records a decision, shows the person's name",
    "settings.court_helper": "registers a helper, shows a code",
    "settings.audit_export": "who looked when (the person's log), no visit",
    "settings.invitation": "accepts an invitation",
    "settings.invite": "answers with a redirect",
    "settings.withdraw": "answers with a redirect",
    "settings.add_relationship": "answers with a redirect",
    "settings.end_relationship": "answers with a redirect",
    "settings.unit_consent": "answers with a redirect",
    "settings.preferences_page": "the person's own times, for her and her helpers",
    "settings.add_window": "answers with a redirect",
    "settings.remove_window": "answers with a redirect",
    "reminders.add_rule": "answers with a redirect",
    "reminders.remove_rule": "answers with a redirect",
    "reminders.settings": "answers with a redirect",
    "reminders.unit": "answers with a redirect",
    "reminders.send_test": "sends a test text with no visit in it",
    "feeds.create": "shows the new address once",
    "feeds.revoke": "answers with a redirect",
    "feeds.rotate": "shows the new address once",
    "rights.delete": "the deletion form",
    "person.import_file": "the upload form; the summary counts events",
    "sources.add": "answers with a redirect",
    "sources.remove": "answers with a redirect",
    "sources.sync_now": "answers with a redirect",
    "sources.admin_list": "sources per unit for administrators, no visit",
    "sources.admin_pause": "answers with a redirect",
    "api.put_preferences": "the person's own times",
    "api.get_preferences": "the person's own times",
    "api.put_opening_hours": "a unit's opening hours",
    "api.cancel": "the unit's own booking; refused for any other",
    "api.put_pushed_booking": "a unit's own booking, by its system's id and token",
    "api.get_pushed_booking": "a unit's own booking, by its system's id and token",
    "api.cancel_pushed_booking": "a unit's own booking, by its system's id and token",
    "webhooks.twilio_status": "Twilio's delivery reports",
    "webhooks.twilio_inbound": "replies to reminders",
}


def test_every_endpoint_is_a_surface_here_or_shows_no_visits():
    app = create_app({"DATABASE_URL": "sqlite://"})
    try:
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    finally:
        app.extensions["feed_renderer"].stop()
        app.extensions["engine"].dispose()
    known = set(SURFACES) | set(SAME_AS) | set(NO_VISIT_DATA)
    assert sorted(endpoints - known) == [], "render the new endpoint in SURFACES (or say why not)"
    assert sorted(known - endpoints) == []


def _leaks(bodies: Iterable[tuple[str, bytes]], hidden: dict[str, str]) -> list[str]:
    found = []
    for asked, body in bodies:
        text = _plain(body)
        for mark, what in hidden.items():
            if mark in text:
                found.append(f"{asked}: {what}")
    return found


def _plain(body: bytes) -> str:
    """The bytes as text, with iCalendar's folded lines joined again."""
    return body.decode("utf-8", errors="replace").replace("\r\n ", "").replace("\n ", "")


@pytest.mark.parametrize("viewer", VIEWERS, ids=lambda v: v.id)
def test_no_surface_shows_a_viewer_more_than_their_level(app, client, session, viewer):
    marked = mark_world(session, viewer)
    log_in(client, viewer.role)
    ctx = Ctx(app, client, session, marked, viewer)
    bodies: Bodies = []
    for name, surface in SURFACES.items():
        for asked, body in surface(ctx):
            bodies.append((f"{name} {asked}", body))
    hidden = hidden_markers(lambda unit: visible(viewer, unit))
    assert _leaks(bodies, hidden) == []
    if viewer.role == "person":
        # The markers are real: the person finds every field of every unit somewhere (her
        # own calendar has no unit address to show).
        everything = "".join(_plain(body) for _, body in bodies)
        missing = [
            f"{unit} {name}"
            for unit in UNITS
            for name in FIELDS
            if marker(unit, name) not in everything and (unit, name) != ("P", "ADDR")
        ]
        assert missing == []


@pytest.mark.parametrize(
    "viewer",
    [Viewer("person"), Viewer("person", sensitive=True, protected=True)],
    ids=lambda v: v.id,
)
@pytest.mark.parametrize("level", ["full", "limited", "busy"])
def test_a_feed_shows_only_what_its_level_promises(client, session, viewer, level):
    """A feed leaves our site: a protected person's never holds an address; a sensitive
    unit is named neutrally below full; the person's own calendar is hers (she made it)."""
    marked = mark_world(session, viewer)
    made = feeds.create_feed(
        session, Actor.operator(), marked.world.person_id, level=level, now=NOW
    )
    session.commit()
    body = client.get(feeds.feed_path(made.token)).data
    feed_level = {"full": ViewLevel.FULL, "limited": ViewLevel.TIME_PLACE}.get(
        level, ViewLevel.BUSY
    )

    def shown(unit: str) -> set[str]:
        return at_level(
            feed_level,
            sensitive=viewer.sensitive and unit == "C",
            place=not viewer.protected,
        )

    assert _leaks([(f"feed {level}", body)], hidden_markers(shown)) == []


@pytest.mark.parametrize("helper", sorted(HELPER_LEVELS))
def test_a_helpers_feed_follows_the_helpers_level(client, session, helper):
    marked = mark_world(session, Viewer(helper))
    log_in(client, helper)
    made = client.post(f"/people/{marked.world.person_id}/feeds", data={"label": "Min"})
    token = re.search(rb"/feed/([A-Za-z0-9_-]+)\.ics", made.data)
    assert token, made.data[:500]
    body = client.get(f"/feed/{token.group(1).decode()}.ics").data
    viewer = Viewer(helper)
    assert _leaks([(f"{helper}'s feed", body)], hidden_markers(lambda u: visible(viewer, u))) == []


@pytest.mark.parametrize(
    "viewer",
    [Viewer("person"), Viewer("person", sensitive=True, protected=True)],
    ids=lambda v: v.id,
)
def test_a_reminder_says_only_what_its_recipient_may_see(app, session, viewer):
    """Every text of the day's reminders, to the person and to each helper: a protected
    person's texts hold no address, a sensitive unit is never named, and a helper learns
    no more than the helper's level."""
    mark_world(session, viewer)
    sender = FakeSender()
    dispatch_due(
        app.extensions["session_factory"],
        sender=sender,
        settings=DispatchSettings(public_base_url="https://kalender.example.se"),
        clock=lambda: datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
    )
    # A helper who gets reminders without seeing the calendar is told time and place: what
    # the reminder is for.
    levels = {"+46701112233": ViewLevel.FULL} | {
        phone: HELPER_LEVELS.get(name, ViewLevel.TIME_PLACE)
        for name, phone in HELPER_PHONES.items()
    }
    assert {to for to, _, _ in sender.sent} == set(levels), "a recipient got no reminder"
    leaks = []
    for to, text, _ in sender.sent:

        def shown(unit: str, level: ViewLevel = levels[to]) -> set[str]:
            # SMS: a unit by name only where she let reminders name it (every unit here),
            # never a sensitive one; her own calendar is never reminded of.
            return at_level(
                level, sensitive=viewer.sensitive and unit == "C", place=not viewer.protected
            )

        leaks += _leaks([(f"SMS to {to[:6]}", text.encode())], hidden_markers(shown))
    assert leaks == []
