"""A small world with one person and everyone who might look at her calendar.

Passwords share one cheap argon2 hash (made once), so building the world and logging in
stays fast enough to do per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.models import (
    Booking,
    BookingOrigin,
    BookingStatus,
    CareRelationship,
    HelperBasis,
    HelperGrant,
    PersonTimeWindow,
    Provider,
    ProviderKind,
    Role,
    TimeWindowKind,
    User,
    ViewLevel,
)
from calendar_app.services.access import Actor
from calendar_app.services.directory import builtin_source
from tests.support.helpers import PNR_BO, add_person, do_import, event, vcalendar

PASSWORD = "world-password"
ROLES = (
    "anonymous",
    "person",
    "other_person",
    "helper_full",
    "helper_time_place",
    "helper_busy",
    "helper_reminders",
    "helper_settings",
    "caregiver",
    "caregiver_unrelated",
    "admin",
)


@lru_cache(maxsize=1)
def cheap_hash() -> str:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


@dataclass
class World:
    person_id: int
    other_person_id: int
    unit_a: int  # Vuxenpsykiatrin: the related caregiver's unit
    unit_b: int  # Boendestöd
    unit_c: int  # Vårdcentralen: no care relationship
    booking_a: int
    booking_b: int
    relationship_b: int
    grant_busy: int
    window_id: int
    native_booking: int
    pnr: str
    users: dict[str, str] = field(default_factory=dict)  # role -> username


def build_world(session: Session, now: datetime) -> World:
    alva = add_person(session, now, name="Alva Lindqvist")
    bo = add_person(session, now, pnr=PNR_BO, name="Bo Ek")
    do_import(
        session,
        alva,
        vcalendar(
            event(
                "psyk",
                ":20261202T090000Z",
                ":20261202T100000Z",
                summary="Samtal",
                LOCATION="Sigfridsvägen 9",
            )
        ),
        now,
    )
    do_import(
        session,
        alva,
        vcalendar(
            event(
                "hem",
                ":20261202T093000Z",
                ":20261202T103000Z",
                summary="Boendestöd",
                LOCATION="Hemma",
            )
        ),
        now,
        provider="Boendestöd Växjö kommun",
        kind=ProviderKind.MUNICIPALITY,
    )
    unit_c = Provider(name="Vårdcentralen Teleborg", kind=ProviderKind.REGION)
    session.add(unit_c)
    session.flush()
    units = {p.name: p.id for p in session.scalars(select(Provider))}
    bookings = {b.uid: b.id for b in session.scalars(select(Booking))}
    relationship_b = session.scalars(
        select(CareRelationship.id).where(
            CareRelationship.provider_id == units["Boendestöd Växjö kommun"]
        )
    ).one()
    users: dict[str, str] = {}

    def user(role_name: str, role: Role, **kw: int | None) -> User:
        row = User(
            username=role_name,
            display_name=role_name.replace("_", " ").title(),
            password_hash=cheap_hash(),
            role=role,
            **kw,
        )
        session.add(row)
        session.flush()
        users[role_name] = role_name
        return row

    user("person", Role.PERSON, person_id=alva.id)
    user("other_person", Role.PERSON, person_id=bo.id)
    user("caregiver", Role.CAREGIVER, provider_id=units["Vuxenpsykiatrin Växjö"])
    user("caregiver_unrelated", Role.CAREGIVER, provider_id=unit_c.id)
    user("admin", Role.ADMIN)
    grants = {}
    for name, level, reminders, manage in (
        ("helper_full", ViewLevel.FULL, False, False),
        ("helper_time_place", ViewLevel.TIME_PLACE, False, False),
        ("helper_busy", ViewLevel.BUSY, False, False),
        ("helper_reminders", None, True, False),
        ("helper_settings", None, False, True),
    ):
        helper = user(name, Role.HELPER)
        grant = HelperGrant(
            person_id=alva.id,
            helper_user_id=helper.id,
            helper_name=name,
            contact="+46701234567",
            view_level=level,
            receives_reminders=reminders,
            manages_settings=manage,
            basis=HelperBasis.RELATIVE,
            granted_utc=now,
        )
        session.add(grant)
        session.flush()
        grants[name] = grant.id
    # Sunday mornings only: it never touches the weekday visits the tests book.
    window = PersonTimeWindow(
        person_id=alva.id,
        kind=TimeWindowKind.BUSY,
        label="Träning",
        weekdays="6",
        start_time=time(8),
        end_time=time(9),
    )
    session.add(window)
    native = Booking(
        person_id=alva.id,
        provider_id=units["Vuxenpsykiatrin Växjö"],
        source_id=builtin_source(session, session.get(Provider, units["Vuxenpsykiatrin Växjö"])).id,
        uid="native-1@personkalendern",
        start_utc=now + timedelta(days=20),
        end_utc=now + timedelta(days=20, hours=1),
        range_start_utc=now + timedelta(days=20),
        range_end_utc=now + timedelta(days=20, hours=1),
        title="Uppföljning",
        location="",
        status=BookingStatus.CONFIRMED,
        origin=BookingOrigin.NATIVE,
        content_hash="native",
        first_seen_utc=now,
        last_seen_utc=now,
    )
    session.add(native)
    session.flush()
    session.commit()
    return World(
        person_id=alva.id,
        other_person_id=bo.id,
        unit_a=units["Vuxenpsykiatrin Växjö"],
        unit_b=units["Boendestöd Växjö kommun"],
        unit_c=unit_c.id,
        booking_a=bookings["psyk"],
        booking_b=bookings["hem"],
        relationship_b=relationship_b,
        grant_busy=grants["helper_busy"],
        window_id=window.id,
        native_booking=native.id,
        pnr=alva.personnummer,
        users=users,
    )


def log_in(client, role: str) -> None:
    if role == "anonymous":
        return
    response = client.post("/login", data={"username": role, "password": PASSWORD})
    assert response.status_code == 302, f"{role} could not log in"


def actor(session: Session, username: str) -> Actor:
    """The world's user ``username`` as the services see them."""
    user = session.scalars(select(User).where(User.username == username)).one()
    return Actor(
        user_id=user.id,
        role=user.role,
        label=user.display_name,
        person_id=user.person_id,
        provider_id=user.provider_id,
        unit_name=user.provider.name if user.provider else "",
    )
