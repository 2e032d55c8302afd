"""People, units and sources: finding and registering them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain import personnummer, phone
from calendar_app.domain.errors import DomainError
from calendar_app.models import (
    BUILTIN_SOURCE,
    CareRelationship,
    Person,
    Provider,
    ProviderKind,
    Source,
)


def find_person(session: Session, pnr_text: str, *, today: date) -> Person:
    """Return the person with this personnummer, or raise ``person.not_found``."""
    pnr = personnummer.parse(pnr_text, today=today)
    person = session.scalars(select(Person).where(Person.personnummer == pnr)).first()
    if person is None or person.deleted_utc is not None:
        raise DomainError("person.not_found", "no person with that personnummer is registered")
    return person


def add_person(
    session: Session,
    *,
    pnr_text: str,
    name: str,
    phone_text: str | None,
    timezone: str,
    now: datetime,
) -> Person:
    """Register a person (one transaction); the personnummer is stored as 12 digits."""
    pnr = personnummer.parse(pnr_text, today=now.date())
    name = name.strip()
    if not name:
        raise DomainError("person.name_missing", "the person's name is missing")
    mobile = phone.to_e164(phone_text) if phone_text else None
    person = session.scalars(select(Person).where(Person.personnummer == pnr)).first()
    if person is not None and person.deleted_utc is None:
        raise DomainError("person.exists", "a person with that personnummer is already registered")
    if person is not None:
        # Registered again after deleting their data: the kept row (and with it the audit
        # log about them) is reused, with nothing else of the old calendar.
        person.name, person.phone_e164, person.timezone = name[:200], mobile, timezone
        person.deleted_utc = None
        person.protected_identity = False
    else:
        person = Person(
            personnummer=pnr, name=name[:200], phone_e164=mobile, timezone=timezone, created_at=now
        )
        session.add(person)
    session.commit()
    return person


def parse_kind(text: str | None) -> ProviderKind:
    """Return the provider kind named by ``text``, or raise ``provider.kind``."""
    try:
        return ProviderKind(text or ProviderKind.OTHER.value)
    except ValueError:
        kinds = ", ".join(k.value for k in ProviderKind)
        raise DomainError("provider.kind", f"unknown provider kind; use one of {kinds}") from None


def get_or_add_provider(session: Session, name: str, kind: ProviderKind | None) -> Provider:
    """The unit with this name, created (with ``kind``) if new; no commit."""
    name = name.strip()
    if not name:
        raise DomainError("provider.name_missing", "the provider's name is missing")
    provider = session.scalars(select(Provider).where(Provider.name == name)).first()
    if provider is None:
        provider = Provider(name=name[:200], kind=kind or ProviderKind.OTHER)
        session.add(provider)
        session.flush()
        session.add(Source(provider_id=provider.id, name=BUILTIN_SOURCE, adapter="native"))
    elif kind is not None and provider.kind != kind:
        raise DomainError(
            "provider.kind_mismatch",
            f"the provider is registered as {provider.kind.value}, not {kind.value}",
        )
    return provider


def builtin_source(session: Session, provider: Provider) -> Source:
    """The unit's own source for bookings made here, created if it is missing; no commit."""
    source = session.scalars(
        select(Source).where(
            Source.provider_id == provider.id,
            Source.name == BUILTIN_SOURCE,
            Source.person_id.is_(None),
        )
    ).first()
    if source is None:
        source = Source(provider_id=provider.id, name=BUILTIN_SOURCE, adapter="native")
        session.add(source)
        session.flush()
    return source


# The shared source of bookings a unit's own system pushes (services/push.py).
PUSH_SOURCE = "push"


def get_or_add_source(session: Session, provider: Provider, name: str, adapter: str) -> Source:
    """The unit's source with this name, created if new; no commit."""
    name = name.strip() or "file"
    if name == BUILTIN_SOURCE:
        raise DomainError("source.builtin", "the built-in source holds native bookings only")
    if name == PUSH_SOURCE and adapter != PUSH_SOURCE:
        # A complete file read into it would cancel the bookings the unit's system pushed.
        raise DomainError("source.builtin", "the push source holds pushed bookings only")
    source = session.scalars(
        select(Source).where(
            Source.provider_id == provider.id, Source.name == name, Source.person_id.is_(None)
        )
    ).first()
    if source is None:
        source = Source(provider_id=provider.id, name=name[:100], adapter=adapter)
        session.add(source)
        session.flush()
    return source


def ensure_care_relationship(
    session: Session, person_id: int, provider: Provider, *, created_by: str, now: datetime
) -> None:
    """Record that the unit cares for the person, unless it already does; no commit."""
    if provider.kind == ProviderKind.PERSONAL:
        return
    existing = session.scalars(
        select(CareRelationship.id).where(
            CareRelationship.person_id == person_id,
            CareRelationship.provider_id == provider.id,
            CareRelationship.ended_utc.is_(None),
        )
    ).first()
    if existing is None:
        session.add(
            CareRelationship(
                person_id=person_id, provider_id=provider.id, created_by=created_by, started_utc=now
            )
        )
