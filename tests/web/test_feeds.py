"""Calendar feeds: what a subscribed phone reads, read back by two independent parsers.

Every feed is parsed by ``icalendar`` and by ``vobject`` (its own parser and its own time
zone handling, from the VTIMEZONE we write), and both must read the same events, at the
instants the calendar holds, with the clock-change weekends included.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from sqlalchemy import func, select, update

from calendar_app.cli import main
from calendar_app.domain.feed import texts
from calendar_app.models import (
    AuditEvent,
    Booking,
    Feed,
    FeedRender,
    HelperGrant,
    Person,
    ProviderKind,
    ReminderRule,
    Role,
    UnitConsent,
    User,
    ViewLevel,
)
from calendar_app.services import feed_render, feeds
from calendar_app.services.access import AccessDenied, Actor
from calendar_app.services.settings import withdraw_helper
from tests.support.helpers import (
    PNR_ALVA,
    add_person,
    do_import,
    event,
    recent_calendar,
    vcalendar,
    wait_for,
)
from tests.support.world import actor, build_world, cheap_hash, log_in

# Both databases: the feed fetch's own statements and the render cache's rows depend on
# the SQL dialect.
pytestmark = pytest.mark.databases("sqlite", "postgresql")

STHLM = ";TZID=Europe/Stockholm:"
OPERATOR = Actor.operator()


@dataclass(frozen=True)
class Seen:
    """One VEVENT as a parser read it: instants in UTC, all-day dates as dates."""

    uid: str
    summary: str
    start: datetime | date
    end: datetime | date
    status: str
    sequence: int
    last_modified: datetime
    location: str
    description: str
    alarms: tuple[timedelta, ...]


def _instant(value: datetime | date) -> datetime | date:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def read_with_icalendar(body: bytes) -> list[Seen]:
    calendar = icalendar.Calendar.from_ical(body)
    return sorted(
        (
            Seen(
                uid=str(e["UID"]),
                summary=str(e["SUMMARY"]),
                start=_instant(e.decoded("DTSTART")),
                end=_instant(e.decoded("DTEND")),
                status=str(e["STATUS"]),
                sequence=int(e["SEQUENCE"]),
                last_modified=e.decoded("LAST-MODIFIED").astimezone(UTC),
                location=str(e.get("LOCATION", "")),
                description=str(e.get("DESCRIPTION", "")),
                alarms=tuple(-a.decoded("TRIGGER") for a in e.walk("VALARM")),
            )
            for e in calendar.walk("VEVENT")
        ),
        key=_order,
    )


def read_with_vobject(body: bytes) -> list[Seen]:
    # vobject keeps the first VTIMEZONE it parsed for each TZID for the rest of the process
    # and reuses it for later files; forget ours, so this feed is read with its own.
    vobject.icalendar.__dict__["__tzidMap"].pop("Europe/Stockholm", None)
    calendar = vobject.readOne(body.decode("utf-8"))
    found = []
    for e in getattr(calendar, "vevent_list", []):
        found.append(
            Seen(
                uid=e.uid.value,
                summary=e.summary.value,
                start=_instant(e.dtstart.value),
                end=_instant(e.dtend.value),
                status=e.status.value,
                sequence=int(e.sequence.value),
                last_modified=e.last_modified.value.astimezone(UTC),
                location=e.location.value if hasattr(e, "location") else "",
                description=e.description.value if hasattr(e, "description") else "",
                alarms=tuple(-a.trigger.value for a in getattr(e, "valarm_list", [])),
            )
        )
    return sorted(found, key=_order)


def _order(seen: Seen) -> tuple[str, str]:
    return (str(seen.start), seen.summary)


def read_both(body: bytes) -> list[Seen]:
    """The events as both parsers read them; fails unless they agree exactly."""
    first, second = read_with_icalendar(body), read_with_vobject(body)
    assert first == second
    return first


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# The calendar the feed tests share: times written in Swedish local time around both clock
# changes, a weekly series across the spring change with one moved occurrence, an all-day
# event, a cancelled visit, and a second unit.
CARE = vcalendar(
    event("samtal", STHLM + "20261202T100000", STHLM + "20261202T110000", "Samtal",
          LOCATION="Sigfridsvägen 9, Växjö", DESCRIPTION="Ta med remissen.",
          X_PK_PRACTITIONER="Sara Nilsson"),
    event("host", STHLM + "20261025T100000", STHLM + "20261025T110000", "Höstbesök",
          LOCATION="Sigfridsvägen 9, Växjö"),
    event("var", STHLM + "20270328T100000", STHLM + "20270328T110000", "Vårbesök",
          LOCATION="Sigfridsvägen 9, Växjö"),
    event("grupp", STHLM + "20270302T130000", STHLM + "20270302T140000", "Gruppträff",
          RRULE="FREQ=WEEKLY;COUNT=6"),
    event("grupp", STHLM + "20270316T150000", STHLM + "20270316T160000", "Gruppträff, flyttad")
    + "\nRECURRENCE-ID;TZID=Europe/Stockholm:20270316T130000",
    event("jul", ";VALUE=DATE:20261224", ";VALUE=DATE:20261225", "Stängt i jul"),
    event("installt", STHLM + "20261210T090000", STHLM + "20261210T093000", "Provtagning",
          STATUS="CANCELLED"),
)  # fmt: skip
HOME = vcalendar(
    event("hem", ":20261203T090000Z", ":20261203T100000Z", "Boendestöd", LOCATION="Hemma")
)

EXPECTED = [
    ("Höstbesök", utc(2026, 10, 25, 9), utc(2026, 10, 25, 10)),  # CET again since 03.00
    ("Samtal", utc(2026, 12, 2, 9), utc(2026, 12, 2, 10)),
    ("Boendestöd", utc(2026, 12, 3, 9), utc(2026, 12, 3, 10)),
    ("INSTÄLLT: Provtagning", utc(2026, 12, 10, 8), utc(2026, 12, 10, 8, 30)),
    ("Stängt i jul", date(2026, 12, 24), date(2026, 12, 25)),
    ("Gruppträff", utc(2027, 3, 2, 12), utc(2027, 3, 2, 13)),
    ("Gruppträff", utc(2027, 3, 9, 12), utc(2027, 3, 9, 13)),
    ("Gruppträff, flyttad", utc(2027, 3, 16, 14), utc(2027, 3, 16, 15)),
    ("Gruppträff", utc(2027, 3, 23, 12), utc(2027, 3, 23, 13)),
    ("Vårbesök", utc(2027, 3, 28, 8), utc(2027, 3, 28, 9)),  # CEST since 02.00 that night
    ("Gruppträff", utc(2027, 3, 30, 11), utc(2027, 3, 30, 12)),  # 13.00 summer time
    ("Gruppträff", utc(2027, 4, 6, 11), utc(2027, 4, 6, 12)),
]


def _sorted(items: list[tuple[str, datetime | date, datetime | date]]) -> list[tuple]:
    return sorted(items, key=lambda item: (str(item[1]), item[0]))


def load_calendar(session, now: datetime) -> Person:
    person = add_person(session, now, name="Alva Lindqvist")
    do_import(session, person, CARE, now)
    do_import(
        session, person, HOME, now, provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
    )  # fmt: skip
    return person


def make_feed(session, person_id: int, now: datetime, level: str = "full", **kw) -> int:
    return feeds.create_feed(session, OPERATOR, person_id, level=level, now=now, **kw).id


def render(session, feed_id: int, now: datetime) -> bytes:
    body = feed_render.render_feed(session, feed_id, now=now)
    session.commit()
    return body


# --- What the feed says ----------------------------------------------------------------


def test_both_parsers_read_every_visit_at_its_instant_across_both_clock_changes(session, now):
    person = load_calendar(session, now)
    feed_id = make_feed(session, person.id, now)

    body = render(session, feed_id, now)
    seen = read_both(body)

    assert _sorted([(s.summary, s.start, s.end) for s in seen]) == _sorted(EXPECTED)
    cancelled = [s for s in seen if s.summary.startswith("INSTÄLLT")]
    assert [s.status for s in cancelled] == ["CANCELLED"]
    assert {s.status for s in seen} - {"CANCELLED"} == {"CONFIRMED"}
    # The local wall-clock time is what vobject computes from our VTIMEZONE.
    spring = next(e for e in vobject.readOne(body.decode()).vevent_list if e.uid.value == next(
        s.uid for s in seen if s.summary == "Vårbesök"))  # fmt: skip
    assert spring.dtstart.value.hour == 10 and spring.dtstart.value.utcoffset() == timedelta(
        hours=2
    )


def test_the_feed_round_trips_exactly_through_icalendar_and_through_vobject(session, now):
    person = load_calendar(session, now)
    body = render(session, make_feed(session, person.id, now, alarms=True), now)

    assert icalendar.Calendar.from_ical(body).to_ical() == body
    again = vobject.readOne(body.decode()).serialize().encode()
    assert read_with_icalendar(again) == read_with_icalendar(body)
    assert read_with_vobject(again) == read_with_vobject(body)


def test_the_calendar_has_a_name_a_refresh_interval_and_a_vtimezone_for_its_zone(session, now):
    person = load_calendar(session, now)
    body = render(session, make_feed(session, person.id, now, label="Alvas vård"), now)
    calendar = icalendar.Calendar.from_ical(body)

    assert str(calendar["NAME"]) == str(calendar["X-WR-CALNAME"]) == "Alvas vård"
    assert calendar.decoded("REFRESH-INTERVAL") == timedelta(hours=1)
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"
    zones = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
    used = {
        e["DTSTART"].params["TZID"]
        for e in calendar.walk("VEVENT")
        if "TZID" in e["DTSTART"].params
    }
    assert used == {"Europe/Stockholm"} and used <= zones
    for vevent in calendar.walk("VEVENT"):
        assert vevent.decoded("DTSTAMP") == vevent.decoded("LAST-MODIFIED")
    assert b"\r\n" in body and all(len(line) <= 75 for line in body.split(b"\r\n"))


def test_uids_are_our_own_stable_and_free_of_personal_and_provider_data(session, now):
    person = load_calendar(session, now)
    feed_id = make_feed(session, person.id, now)
    first = read_both(render(session, feed_id, now))
    uids = [s.uid for s in first]

    assert len(set(uids)) == len(uids)
    for uid in uids:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", uid)
    provider_uids = set(session.scalars(select(Booking.uid)))
    for uid in uids:
        assert PNR_ALVA not in uid and not any(p in uid for p in provider_uids)
    # Another render, another feed, and a change to one visit leave every UID as it was.
    other = make_feed(session, person.id, now, level="busy")
    moved = CARE.replace(b"20261202T100000", b"20261202T120000").replace(
        b"20261202T110000", b"20261202T130000"
    )
    do_import(session, person, moved, now + timedelta(hours=1))
    assert {s.uid for s in read_both(render(session, feed_id, now))} == set(uids)
    # A busy-only feed leaves out the cancelled visit (it takes no time); the rest keep
    # the same UIDs as in the full feed.
    busy = {s.uid for s in read_both(render(session, other, now))}
    cancelled = {s.uid for s in first if s.status == "CANCELLED"}
    assert cancelled and busy == set(uids) - cancelled


def test_sequence_goes_up_when_the_time_changes_and_last_modified_on_every_change(session, now):
    person = load_calendar(session, now)
    feed_id = make_feed(session, person.id, now)
    before = {s.uid: s for s in read_both(render(session, feed_id, now))}
    samtal = next(uid for uid, s in before.items() if s.summary == "Samtal")

    later = now + timedelta(hours=2)
    retitled = CARE.replace(b"SUMMARY:Samtal", b"SUMMARY:Samtal med sjuksk\xc3\xb6terska")
    do_import(session, person, retitled, later)
    renamed = {s.uid: s for s in read_both(render(session, feed_id, later))}
    assert renamed[samtal].summary == "Samtal med sjuksköterska"
    assert renamed[samtal].sequence == before[samtal].sequence == 0
    assert renamed[samtal].last_modified == later.replace(microsecond=0)

    latest = now + timedelta(hours=4)
    moved = retitled.replace(b"20261202T100000", b"20261202T140000").replace(
        b"20261202T110000", b"20261202T150000"
    )
    do_import(session, person, moved, latest)
    after = {s.uid: s for s in read_both(render(session, feed_id, latest))}
    assert after[samtal].start == utc(2026, 12, 2, 13)
    assert after[samtal].sequence == 1
    assert after[samtal].last_modified == latest.replace(microsecond=0)
    unchanged = [uid for uid in before if uid != samtal]
    assert all(after[uid] == before[uid] for uid in unchanged)


def test_a_cancelled_visit_stays_as_cancelled_for_thirty_days_then_leaves_the_feed(session, now):
    person = load_calendar(session, now)
    feed_id = make_feed(session, person.id, now)
    without = re.sub(
        rb"BEGIN:VEVENT\r\nUID:samtal\r\n.*?END:VEVENT\r\n", b"", CARE, flags=re.DOTALL
    )
    assert b"UID:samtal" not in without
    do_import(session, person, without, now)

    day_29 = {s.summary: s for s in read_both(render(session, feed_id, now + timedelta(days=29)))}
    assert day_29["INSTÄLLT: Samtal"].status == "CANCELLED"
    assert day_29["INSTÄLLT: Samtal"].sequence == 1  # a cancellation is a change of state
    assert not day_29["INSTÄLLT: Samtal"].alarms
    day_31 = {s.summary for s in read_both(render(session, feed_id, now + timedelta(days=31)))}
    assert "INSTÄLLT: Samtal" not in day_31 and "Samtal" not in day_31
    assert "Vårbesök" in day_31


def test_each_level_shows_what_it_promises_and_a_sensitive_unit_is_named_neutrally(session, now):
    person = load_calendar(session, now)
    region = session.scalars(select(Booking.provider_id).where(Booking.uid == "samtal")).one()
    session.add(
        UnitConsent(person_id=person.id, provider_id=region, sensitive=True, changed_utc=now)
    )
    session.commit()
    full = {
        s.summary: s for s in read_both(render(session, make_feed(session, person.id, now), now))
    }
    limited = read_both(render(session, make_feed(session, person.id, now, level="limited"), now))
    busy = read_both(render(session, make_feed(session, person.id, now, level="busy"), now))

    samtal = full["Samtal"]
    assert samtal.location == "Sigfridsvägen 9, Växjö"
    assert "Ta med remissen." in samtal.description
    assert "Sara Nilsson" in samtal.description and "Vuxenpsykiatrin Växjö" in samtal.description
    limited_by_start = {s.start: s for s in limited}
    assert limited_by_start[samtal.start].summary == "Besök: din vårdgivare"
    assert limited_by_start[samtal.start].location == "Sigfridsvägen 9, Växjö"
    assert limited_by_start[samtal.start].description == ""
    assert limited_by_start[utc(2026, 12, 3, 9)].summary == "Besök: Boendestöd Växjö kommun"
    # Busy only: the time is taken, nothing more; a cancelled visit takes no time.
    assert {s.summary for s in busy} == {"Upptagen"}
    assert all(s.location == s.description == "" for s in busy)
    every = read_both(render(session, make_feed(session, person.id, now), now))
    assert [s.start for s in limited] == [s.start for s in every]
    assert [s.start for s in busy] == [s.start for s in every if s.status != "CANCELLED"]
    for body in (
        render(session, make_feed(session, person.id, now, level="busy"), now),
        render(session, make_feed(session, person.id, now, level="limited"), now),
    ):
        assert b"Sara Nilsson" not in body and b"remissen" not in body
        assert b"Vuxenpsykiatrin" not in body


def test_a_protected_persons_feeds_hold_no_address_at_any_level(session, now):
    person = load_calendar(session, now)
    person.protected_identity = True
    session.commit()
    for level in ("full", "limited", "busy"):
        body = render(session, make_feed(session, person.id, now, level=level), now)
        assert b"LOCATION" not in body
        assert b"Sigfridsv" not in body and b"Hemma" not in body


def test_alarms_follow_the_persons_reminder_rules(session, now):
    person = load_calendar(session, now)
    with_alarms = make_feed(session, person.id, now, alarms=True)
    without = make_feed(session, person.id, now)
    by_summary = {s.summary: s for s in read_both(render(session, with_alarms, now))}
    # The default rule: the day before at 18.00, in local time on either side of a change.
    assert by_summary["Samtal"].alarms == (timedelta(hours=16),)  # Tue 18.00 -> Wed 10.00
    assert by_summary["Vårbesök"].alarms == (timedelta(hours=15),)  # CET 18.00 -> CEST 10.00
    assert by_summary["Stängt i jul"].alarms == (timedelta(hours=6),)  # 18.00 the day before
    assert not by_summary["INSTÄLLT: Provtagning"].alarms
    assert all(not s.alarms for s in read_both(render(session, without, now)))

    session.add(ReminderRule(person_id=person.id, kind="hours_before", hours=3, created_utc=now))
    region = session.scalars(select(Booking.provider_id).where(Booking.uid == "samtal")).one()
    session.add(
        UnitConsent(person_id=person.id, provider_id=region, reminders=False, changed_utc=now)
    )
    session.commit()
    by_summary = {s.summary: s for s in read_both(render(session, with_alarms, now))}
    assert by_summary["Boendestöd"].alarms == (timedelta(hours=3),)
    assert not by_summary["Samtal"].alarms  # reminders about that unit are turned off


# --- Who gets a feed, and who sees it ------------------------------------------------


def test_a_helper_gets_a_feed_at_the_level_granted_and_loses_it_with_the_grant(
    client, session, now, clock
):
    world = build_world(session, now)
    helper = actor(session, "helper_time_place")
    made = feeds.create_feed(session, helper, world.person_id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)

    first = client.get(url)
    assert first.status_code == 200
    summaries = {s.summary for s in read_both(first.data)}
    assert "Samtal" not in summaries and "Besök: Vuxenpsykiatrin Växjö" in summaries

    grant = session.scalars(
        select(HelperGrant).where(HelperGrant.helper_name == "helper_time_place")
    ).one()
    grant.view_level = ViewLevel.BUSY
    session.commit()
    assert {s.summary for s in read_both(client.get(url).data)} == {"Upptagen"}

    withdraw_helper(session, actor(session, "person"), world.person_id, grant.id, now=clock.now())
    gone = client.get(url)
    assert gone.status_code == 404
    assert gone.data == client.get("/feed/" + "x" * 43 + ".ics").data


def test_no_one_but_the_person_their_helpers_and_the_operator_makes_a_feed(session, now):
    world = build_world(session, now)
    for username in ("caregiver", "admin", "other_person", "helper_reminders", "helper_settings"):
        with pytest.raises(AccessDenied):
            feeds.create_feed(
                session, actor(session, username), world.person_id, level="full", now=now
            )
        session.rollback()
    assert session.scalar(select(func.count()).select_from(Feed)) == 0


def test_every_feed_is_listed_on_the_persons_page_and_none_shows_its_token(client, session, now):
    world = build_world(session, now)
    by_admin = feeds.create_feed(session, OPERATOR, world.person_id, level="busy", now=now)
    by_helper = feeds.create_feed(
        session, actor(session, "helper_full"), world.person_id, level=None, now=now
    )
    log_in(client, "person")

    page = client.get(f"/people/{world.person_id}/feeds").get_data(as_text=True)

    assert "av en administratör" in page and "av hjälparen" in page
    assert "Hjälparens flöde: helper_full" in page
    assert by_admin.token not in page and by_helper.token not in page
    settings = client.get(f"/people/{world.person_id}/settings").get_data(as_text=True)
    assert "Hjälparens flöde: helper_full" in settings and "Bara upptagen" in settings
    # ...where the person stops any of them.
    stop = f"/people/{world.person_id}/feeds/{by_helper.id}/revoke"
    assert f'action="{stop}"' in settings
    assert client.post(stop).status_code == 302
    assert client.get(feeds.feed_path(by_helper.token)).status_code == 404
    assert client.get(feeds.feed_path(by_admin.token)).status_code == 200
    # A helper sees only their own feeds (none left), never the person's.
    log_in(client, "helper_full")
    own = client.get(f"/people/{world.person_id}/feeds").get_data(as_text=True)
    assert "Inga flöden än." in own and "av en administratör" not in own
    stored = " ".join(
        f"{f.token_hash} {f.label} {f.created_by}" for f in session.scalars(select(Feed))
    )
    assert by_admin.token not in stored and by_helper.token not in stored


def test_making_a_feed_shows_its_address_once_as_https_webcal_and_a_qr_code(client, session, now):
    world = build_world(session, now)
    log_in(client, "person")

    made = client.post(
        f"/people/{world.person_id}/feeds", data={"level": "limited", "label": "Telefonen"}
    )

    assert made.status_code == 201
    page = made.get_data(as_text=True)
    https = re.search(r'value="(http://localhost/feed/([A-Za-z0-9_-]+)\.ics)"', page)
    assert https is not None
    token = https.group(2)
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    assert f'href="webcal://localhost/feed/{token}.ics"' in page
    assert 'src="data:image/svg+xml' in page
    assert client.get(f"/feed/{token}.ics").status_code == 200
    assert token not in client.get(f"/people/{world.person_id}/feeds").get_data(as_text=True)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"level": "everything", "label": "Telefonen"}, "Välj vad flödet visar"),
        ({"level": "full", "label": "x" * 101}, "Ge kalendern ett namn på högst 100 tecken"),
    ],
)
def test_a_bad_feed_form_is_refused_in_swedish_and_makes_no_feed(
    client, session, now, form, message
):
    world = build_world(session, now)
    session.commit()
    log_in(client, "person")

    refused = client.post(f"/people/{world.person_id}/feeds", data=form, follow_redirects=True)

    assert refused.status_code == 200 and message in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Feed)) == 0


def test_an_eleventh_live_feed_is_refused_until_one_is_stopped(client, session, now):
    world = build_world(session, now)
    made = [
        feeds.create_feed(session, OPERATOR, world.person_id, level="busy", now=now)
        for _ in range(feeds.MAX_FEEDS)
    ]
    session.commit()
    log_in(client, "person")
    path = f"/people/{world.person_id}/feeds"

    refused = client.post(path, data={"level": "full"}, follow_redirects=True)

    assert "Du har 10 flöden. Stoppa ett" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Feed)) == feeds.MAX_FEEDS
    session.commit()
    assert client.post(f"{path}/{made[0].id}/revoke").status_code == 302
    assert client.post(path, data={"level": "full"}).status_code == 201
    # A feed that is not the person's (or not there at all) is not found, not refused.
    other = feeds.create_feed(session, OPERATOR, world.other_person_id, level="busy", now=now)
    session.commit()
    assert client.post(f"{path}/{other.id}/revoke").status_code == 404
    assert client.post(f"{path}/999999/rotate").status_code == 404


def test_stopping_a_feed_kills_its_address_at_once_and_a_new_address_replaces_it(
    client, session, now
):
    world = build_world(session, now)
    made = feeds.create_feed(session, OPERATOR, world.person_id, level="full", now=now)
    url = feeds.feed_path(made.token)
    assert client.get(url).status_code == 200
    log_in(client, "person")

    rotated = client.post(f"/people/{world.person_id}/feeds/{made.id}/rotate")
    new_token = re.search(r"/feed/([A-Za-z0-9_-]+)\.ics", rotated.get_data(as_text=True))
    assert rotated.status_code == 201 and new_token is not None
    assert client.get(url).status_code == 404
    new_url = feeds.feed_path(new_token.group(1))
    assert client.get(new_url).status_code == 200

    new_id = session.scalars(select(Feed.id).where(Feed.revoked_utc.is_(None))).one()
    session.commit()  # SQLite: end the read before the app writes
    stopped = client.post(f"/people/{world.person_id}/feeds/{new_id}/revoke")
    assert stopped.status_code == 302
    assert client.get(new_url).status_code == 404
    assert session.scalar(select(func.count()).select_from(FeedRender)) == 0


# --- HTTP --------------------------------------------------------------------------------


def test_the_feed_answers_with_calendar_type_validators_and_private_caching(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)

    response = client.get(url)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})
    assert both.status_code == 200
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.data == b"" and not_modified.headers["ETag"] == etag
    assert not_modified.headers["Cache-Control"] == "private, max-age=300"
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(response.data))
    assert head.headers["ETag"] == etag
    # Served in front of Flask: the site's security headers, no session cookie; only GET
    # and HEAD are feed fetches (and audited).
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers["Vary"]
    assert client.post(url).status_code in (404, 405)


def test_calendar_apps_that_take_gzip_get_the_stored_bytes_with_their_own_etag(
    client, session, clock
):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    plain = client.get(url)

    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})

    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
    # Either tag names the current version: a client that switched encodings gets a 304.
    for tag in (plain.headers["ETag"], packed.headers["ETag"]):
        again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": tag})
        assert again.status_code == 304 and again.headers["ETag"] == packed.headers["ETag"]
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data


def test_a_change_gives_a_new_etag_and_a_later_last_modified(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    first = client.get(url)

    booking = session.scalars(select(Booking).where(Booking.uid == "b")).one()
    later = clock.now()
    do_import(
        session,
        person,
        vcalendar(
            event(
                "b",
                f":{booking.start_utc:%Y%m%dT%H%M%SZ}",
                f":{booking.end_utc:%Y%m%dT%H%M%SZ}",
                "Samtal, ändrat",
            ),
        ),  # fmt: skip
        later,
    )

    second = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert second.last_modified > first.last_modified
    assert "Samtal, ändrat" in {s.summary for s in read_both(second.data)}
    after_ims = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert after_ims.status_code == 200


def test_a_change_renders_the_feed_ahead_so_the_next_fetch_finds_it_ready(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    client.get(feeds.feed_path(made.token))
    rendered_before = session.scalars(select(FeedRender.rendered_utc)).one()
    session.commit()

    clock.advance(timedelta(minutes=1))
    do_import(
        session,
        person,
        vcalendar(
            event(
                "c",
                f":{clock.now() + timedelta(days=30):%Y%m%dT100000Z}",
                f":{clock.now() + timedelta(days=30):%Y%m%dT110000Z}",
                "Ny tid",
            )
        ),
        clock.now(),
        source="other",
    )

    def rendered_ahead() -> bool:
        live = feeds.find_feed(session, made.token, now=clock.now())
        session.commit()
        return live is not None and live.stored_key == live.render_key

    wait_for(rendered_ahead)  # on the renderer's own thread: the import did not wait for it
    assert session.scalars(select(FeedRender.rendered_utc)).one() > rendered_before
    session.commit()
    fetch = client.get(feeds.feed_path(made.token))
    assert "Ny tid" in {s.summary for s in read_both(fetch.data)}


def test_unknown_and_revoked_feeds_get_the_same_plain_404(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    feeds.revoke_feed(session, OPERATOR, person.id, made.id, now=clock.now())

    revoked = client.get(feeds.feed_path(made.token))
    unknown = client.get(feeds.feed_path("A" * len(made.token)))
    malformed = client.get("/feed/short.ics")

    assert revoked.status_code == unknown.status_code == malformed.status_code == 404
    assert revoked.data == unknown.data == malformed.data

    def steady(headers) -> dict[str, str]:  # the rate limiter's counters tick per request,
        # and every answer has its own request id (for the logs)
        varying = ("X-RateLimit", "Retry-After", "X-Request-ID")
        return {k: v for k, v in headers if not k.startswith(varying)}

    assert steady(revoked.headers) == steady(unknown.headers)


def test_every_fetch_is_audited_and_shown_to_the_person(client, session, clock):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(
        session, OPERATOR, person.id, level="busy", label="Jobbet", now=clock.now()
    )
    url = feeds.feed_path(made.token)
    first = client.get(url, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    client.head(url)

    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "feed.fetch").order_by(AuditEvent.id)
    ).all()
    assert [r.detail.rsplit(", ", 1)[1] for r in rows] == ["GET 200", "GET 304", "HEAD 200"]
    assert rows[0].remote_addr == "198.51.100.7"
    assert (rows[0].actor_label, rows[0].actor_role) == ("Jobbet", "feed")
    assert all(made.token not in f"{r.detail} {r.actor_label}" for r in rows)
    session.add(
        User(
            username="alva",
            display_name="Alva",
            password_hash=cheap_hash(),
            role=Role.PERSON,
            person_id=person.id,
        )
    )
    session.commit()
    log_in(client, "alva")
    page = client.get(f"/people/{person.id}/audit").get_data(as_text=True)
    # One line for the feed's day, not one per poll (a phone polls about a hundred times).
    assert page.count("Din kalender hämtades genom en prenumeration (kalenderflöde)") == 1
    assert "Din kalender hämtades genom en prenumeration (kalenderflöde): 3 gånger, " in page
    assert "från 2 adresser" in page  # 198.51.100.7 and the test client's own


def _fetch_row(at: datetime, feed_id: int, label: str, remote: str, role: str = "feed"):
    return AuditEvent(
        at_utc=at,
        person_id=1,
        actor_label=label,
        actor_role=role,
        actor_unit="",
        action="feed.fetch",
        detail=f"feed {feed_id}, full, GET 200",
        remote_addr=remote,
    )


def test_the_persons_log_takes_a_feeds_fetches_together_per_feed_and_local_day():
    from calendar_app.services.audit import log_lines

    def at(text: str) -> datetime:  # Stockholm local time, winter (UTC+1)
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Stockholm"))

    read = AuditEvent(
        at_utc=at("2026-11-20T10:30"),
        person_id=1,
        actor_label="Karin Lind",
        actor_role="caregiver",
        actor_unit="Psykiatrimottagningen",
        action="calendar.read",
        detail="",
        remote_addr="10.0.0.1",
    )
    rows = [  # newest first, as read_audit_log gives them
        _fetch_row(at("2026-11-21T00:10"), 7, "Telefon", "198.51.100.1"),
        _fetch_row(at("2026-11-20T23:55"), 7, "Telefon", "198.51.100.1"),
        _fetch_row(at("2026-11-20T12:00"), 8, "Telefon", "198.51.100.2"),  # another feed
        _fetch_row(at("2026-11-20T11:00"), 7, "Telefon", "198.51.100.3"),
        read,
        _fetch_row(at("2026-11-20T00:05"), 7, "Telefon", "198.51.100.1"),
        _fetch_row(at("2026-11-20T00:01"), 7, "Eva", "198.51.100.9", role="helper-feed"),
    ]

    lines = log_lines(rows, "Europe/Stockholm")

    summary = [(line.actor_label, line.action, line.count, line.addresses) for line in lines]
    assert summary == [
        ("Telefon", "feed.fetch", 1, 1),  # the 21st: a day of its own (local midnight)
        ("Telefon", "feed.fetch", 3, 2),  # feed 7 on the 20th: three fetches, two addresses
        ("Telefon", "feed.fetch", 1, 1),  # feed 8, same label, a line of its own
        ("Karin Lind", "calendar.read", 1, 1),  # a caregiver's read is never merged
        ("Eva", "feed.fetch", 1, 1),
    ]
    assert (lines[1].first, lines[1].at) == (at("2026-11-20T00:05"), at("2026-11-20T23:55"))
    assert lines[3].actor_unit == "Psykiatrimottagningen"


def test_the_feeds_last_fetch_is_kept_to_the_minute_with_every_fetch_audited(
    client, session, clock
):
    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    url = feeds.feed_path(made.token)
    session.commit()

    def last_fetched() -> datetime | None:
        value = session.scalars(select(Feed.last_fetched_utc).where(Feed.id == made.id)).one()
        session.commit()
        return value

    def fetches() -> int:
        count = session.scalar(
            select(func.count()).where(AuditEvent.action == "feed.fetch").select_from(AuditEvent)
        )
        session.commit()
        return count or 0

    before = clock.now()
    assert client.get(url).status_code == 200
    first = last_fetched()
    assert first is not None and first >= before and fetches() == 1
    # Within the minute: audited, the "last fetched" the person sees is not written again.
    assert client.get(url).status_code == 200
    assert last_fetched() == first and fetches() == 2
    # Five minutes on: written with the audit row.
    clock.advance(timedelta(minutes=5))
    assert client.get(url).status_code == 200
    third = last_fetched()
    assert third is not None and third > first and fetches() == 3
    # Only this feed's row is written: the person's other feed keeps its own (none yet).
    other = feeds.create_feed(session, OPERATOR, person.id, level="busy", now=clock.now())
    long_ago = clock.now() - timedelta(minutes=5)
    session.execute(update(Feed).where(Feed.id == made.id).values(last_fetched_utc=long_ago))
    session.commit()
    assert client.get(url).status_code == 200
    assert last_fetched() > long_ago
    assert session.scalars(select(Feed.last_fetched_utc).where(Feed.id == other.id)).one() is None
    assert session.scalars(select(Feed.person_id).where(Feed.id == made.id)).one() == person.id


class TestMisses:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"RATELIMIT_FEED_MISSES": "3 per minute"}

    def test_an_address_that_keeps_guessing_is_slowed_down_but_its_live_feeds_are_not(
        self, client, session, clock
    ):
        person = recent_calendar(session, clock.now())
        made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
        url = feeds.feed_path(made.token)
        guesser = {"REMOTE_ADDR": "203.0.113.5"}
        for _ in range(5):  # fetches that find their feed count for nothing
            assert client.get(url, environ_base=guesser).status_code == 200
        for n in range(3):
            assert client.get(f"/feed/{'x' * 40}{n}.ics", environ_base=guesser).status_code == 404
        refused = client.get(f"/feed/{'y' * 43}.ics", environ_base=guesser)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
        # A live feed is still served to that address (a household behind one address),
        # and another address's misses are counted apart.
        assert client.get(url, environ_base=guesser).status_code == 200
        other = {"REMOTE_ADDR": "203.0.113.9"}
        assert client.get(f"/feed/{'y' * 43}.ics", environ_base=other).status_code == 404


def test_feed_tokens_never_reach_the_access_log(app, session, caplog, clock):
    import logging
    import threading

    import requests
    from werkzeug.serving import make_server

    person = recent_calendar(session, clock.now())
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=clock.now())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO):
            base = f"http://127.0.0.1:{server.server_port}"
            assert requests.get(base + feeds.feed_path(made.token), timeout=10).status_code == 200
            assert requests.get(base + "/feed/" + "z" * 43 + ".ics", timeout=10).status_code == 404
            logging.getLogger("gunicorn.access").info(
                '%(h)s "%(r)s" %(s)s',
                {"h": "127.0.0.1", "r": f"GET /feed/{made.token}.ics", "s": 200},
            )
    finally:
        server.shutdown()
        thread.join()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("/feed/…" in line for line in lines) >= 3
    assert not any(made.token in line or "z" * 43 in line for line in lines)


# --- Commands and downloads ----------------------------------------------------------


def test_feed_create_prints_only_the_new_url(app, session, now):
    person = load_calendar(session, now)
    runner = app.test_cli_runner()

    result = runner.invoke(main, ["feed", "create", "--person", PNR_ALVA, "--level", "limited"])

    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/feed/[A-Za-z0-9_-]{43}\.ics\n", result.output)
    row = session.scalars(select(Feed)).one()
    assert row.level == ViewLevel.TIME_PLACE and row.person_id == person.id
    assert row.created_role == "operator"
    bad = runner.invoke(main, ["feed", "create", "--person", PNR_ALVA, "--level", "everything"])
    assert bad.exit_code != 0


def test_add_to_calendar_downloads_one_visit_with_the_uid_it_has_in_the_feed(client, session, now):
    world = build_world(session, now)
    feed_id = make_feed(session, world.person_id, now)
    in_feed = {s.summary: s for s in read_both(render(session, feed_id, now))}
    log_in(client, "person")

    page = client.get(f"/people/{world.person_id}/bookings/{world.booking_a}")
    assert f"/people/{world.person_id}/bookings/{world.booking_a}/calendar.ics" in page.get_data(
        as_text=True
    )
    download = client.get(f"/people/{world.person_id}/bookings/{world.booking_a}/calendar.ics")

    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert download.headers["Content-Disposition"].startswith("attachment")
    (only,) = read_both(download.data)
    assert only.uid == in_feed["Samtal"].uid
    assert (only.start, only.end, only.location) == (
        in_feed["Samtal"].start,
        in_feed["Samtal"].end,
        "Sigfridsvägen 9",
    )
    log_in(client, "helper_busy")
    busy = client.get(f"/people/{world.person_id}/bookings/{world.booking_a}/calendar.ics")
    assert [s.summary for s in read_both(busy.data)] == [texts("sv")["busy"]]


def test_each_demo_run_prints_a_new_feed_url_that_reads_right_in_both_parsers(
    app, client, session, clock
):
    runner = app.test_cli_runner()
    first = runner.invoke(main, ["demo"])
    second = runner.invoke(main, ["demo"])
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    urls = [
        re.search(r"http://127\.0\.0\.1:5000(/feed/\S+\.ics)", r.output) for r in (first, second)
    ]
    assert urls[0] and urls[1] and urls[0].group(1) != urls[1].group(1)
    assert client.get(urls[0].group(1)).status_code == 404  # the earlier demo feed stopped

    body = client.get(urls[1].group(1)).data
    seen = read_both(body)
    from calendar_app.demo import clock_change_sundays

    today = clock.now().astimezone(ZoneInfo("Europe/Stockholm")).date()
    spring, autumn = clock_change_sundays(today - timedelta(days=today.weekday()))
    weekend = {s.start: s for s in seen if s.summary == "Helgbesök, boendestöd"}
    # 10.00 in Sweden: 08.00 UTC in summer time, 09.00 in winter time.
    assert set(weekend) == {
        datetime(spring.year, spring.month, spring.day, 8, tzinfo=UTC),
        datetime(autumn.year, autumn.month, autumn.day, 9, tzinfo=UTC),
    }
    cancelled = [s for s in seen if s.status == "CANCELLED"]
    assert [s.summary for s in cancelled] == ["INSTÄLLT: Läkarbesök"]
    # Every occurrence of the demo's calendar is in the feed, at its instant.
    person = session.scalars(select(Person)).one()
    from calendar_app.services.calendar import merged_calendar

    occurrences = merged_calendar(
        session, person.id, today - timedelta(days=365), today + timedelta(days=731),
        zone=ZoneInfo("Europe/Stockholm"), max_days=1100,
    )  # fmt: skip
    session.commit()
    assert sorted((o.start, o.end) for o in occurrences) == sorted((s.start, s.end) for s in seen)


def test_erasing_the_person_erases_their_feeds(client, session, now):
    from calendar_app.services.erasure import delete_person

    person = load_calendar(session, now)
    made = feeds.create_feed(session, OPERATOR, person.id, level="full", now=now)
    assert client.get(feeds.feed_path(made.token)).status_code == 200

    report = delete_person(session, person.id, now=now)

    assert report.feeds == 1
    assert session.scalar(select(func.count()).select_from(Feed)) == 0
    assert session.scalar(select(func.count()).select_from(FeedRender)) == 0
    session.commit()
    assert client.get(feeds.feed_path(made.token)).status_code == 404
