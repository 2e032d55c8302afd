"""Managing synced sources: adding (checked and sealed), listing, removing, pausing, and
deciding reads held for review. Reading them is :mod:`calendar_app.services.sync`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from calendar_app import sealing
from calendar_app.domain.bookings import read_from_json
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reconcile import plan_read
from calendar_app.models import (
    Booking,
    ImportRun,
    InboundSms,
    Person,
    Provider,
    ProviderKind,
    Reminder,
    ReviewState,
    Role,
    Source,
    SourceReview,
    SourceState,
)
from calendar_app.providers.registry import adapter_for
from calendar_app.services.access import AccessDenied, Actor, audit, authorize
from calendar_app.services.directory import ensure_care_relationship, get_or_add_provider
from calendar_app.services.imports import apply_read, load_stored
from calendar_app.services.locking import begin_person_write, calendar_changed
from calendar_app.services.reminders import replan
from calendar_app.services.source_health import pending_by_source, settings_of
from calendar_app.services.sync import CREDENTIAL_PREFIX, SyncPolicy, succeeded

# The unit that holds a person's own calendars (work, school, a phone's published URL).
PERSONAL_UNIT = "Min kalender"
MIN_POLL_MINUTES, MAX_POLL_MINUTES = 5, 24 * 60


def add_source(
    session: Session,
    actor: Actor,
    *,
    person_id: int,
    adapter: str,
    fields: Mapping[str, str],
    unit_name: str | None,
    unit_kind: ProviderKind | None = None,
    name: str = "",
    poll_minutes: int | None = None,
    policy: SyncPolicy,
    now: datetime,
) -> Source:
    """Add a synced source to the person's calendar, due at once; one transaction.

    ``unit_name`` None makes it one of the person's own calendars (busy time for others).
    The person (or a helper managing their settings) may add only their own calendars; a
    caregiver only their own unit's; administrators and the operator any.
    """
    personal = unit_name is None
    unit_name = _may_add(session, actor, person_id, personal, unit_name, now)
    session.rollback()  # the checks read; the network check below must not hold a lock
    if "password_from" in fields and actor.role not in (None, Role.ADMIN):
        raise AccessDenied()  # naming a configured credential is for administrators
    prepared = adapter_for(adapter).prepare(fields, policy.allowed_hosts)
    settings = dict(prepared.settings)
    if fields.get("password_from"):
        reference = fields["password_from"].strip().upper()
        if reference not in policy.credentials:
            raise DomainError(
                "source.credential_unknown",
                f"no setting CALENDAR_APP_{CREDENTIAL_PREFIX}{reference} is configured",
            )
        settings["password_from"] = reference
    settings["display"] = prepared.display
    minutes = poll_minutes or policy.poll_minutes
    if not MIN_POLL_MINUTES <= minutes <= MAX_POLL_MINUTES:
        raise DomainError(
            "source.poll_interval",
            f"the poll interval must be {MIN_POLL_MINUTES} to {MAX_POLL_MINUTES} minutes",
        )
    label = (name.strip() or prepared.display or adapter)[:100]
    try:
        person = begin_person_write(session, person_id)
        if person is None or person.deleted_utc is not None:
            raise DomainError("person.not_found", "no such person")
        provider = get_or_add_provider(
            session, unit_name, ProviderKind.PERSONAL if personal else unit_kind
        )
        if not personal and provider.kind == ProviderKind.PERSONAL:
            raise DomainError("source.unit_personal", "choose a care unit, not a personal one")
        taken = session.scalars(
            select(Source.id).where(
                Source.provider_id == provider.id,
                Source.person_id == person_id,
                Source.name == label,
            )
        ).first()
        if taken is not None:
            raise DomainError("source.exists", "the person already has a source by that name")
        source = Source(
            provider_id=provider.id,
            person_id=person_id,
            name=label,
            adapter=adapter,
            settings=json.dumps(settings, sort_keys=True),
            secrets=sealing.seal(prepared.secrets, policy.secret_key),
            poll_minutes=minutes,
            enabled=True,
            state=SourceState.NEW,
            next_due_utc=now,
            created_utc=now,
            created_by=actor.label[:200],
        )
        session.add(source)
        ensure_care_relationship(session, person_id, provider, created_by="source", now=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return source


def _may_add(
    session: Session,
    actor: Actor,
    person_id: int,
    personal: bool,
    unit_name: str | None,
    now: datetime,
) -> str:
    """Check that ``actor`` may add this source; return the unit's name."""
    if actor.role in (None, Role.ADMIN):
        person = session.get(Person, person_id)
        if person is None or person.deleted_utc is not None:
            raise DomainError("person.not_found", "no such person")
        return PERSONAL_UNIT if personal else str(unit_name)
    if actor.role == Role.CAREGIVER:
        authorize(session, actor, person_id, "calendar.import", now=now)
        if personal or unit_name != actor.unit_name:
            raise AccessDenied()
        return unit_name
    authorize(session, actor, person_id, "settings.write", now=now)
    if not personal:
        raise AccessDenied()
    return PERSONAL_UNIT


@dataclass(frozen=True)
class SourceRow:
    """A synced source as listed: what it is and how it is doing (no secrets)."""

    id: int
    person_id: int
    unit: str
    personal: bool
    name: str
    adapter: str
    display: str
    poll_minutes: int
    enabled: bool
    state: str
    last_success_utc: datetime | None
    last_error_utc: datetime | None
    last_error_code: str
    last_error_message: str
    pending_review_id: int | None


def list_sources(session: Session, person_id: int | None = None) -> list[SourceRow]:
    """Synced sources (of one person, or all), in a stable order; no commit."""
    query = (
        select(Source, Provider)
        .join(Provider, Provider.id == Source.provider_id)
        .where(Source.person_id.is_not(None))
        .order_by(Source.person_id, Provider.name, Source.name, Source.id)
    )
    if person_id is not None:
        query = query.where(Source.person_id == person_id)
    pending = pending_by_source(session, person_id)
    return [
        SourceRow(
            id=source.id,
            person_id=int(source.person_id or 0),
            unit=provider.name,
            personal=provider.kind == ProviderKind.PERSONAL,
            name=source.name,
            adapter=source.adapter,
            display=settings_of(source).get("display", ""),
            poll_minutes=source.poll_minutes,
            enabled=source.enabled,
            state=source.state.value,
            last_success_utc=source.last_success_utc,
            last_error_utc=source.last_error_utc,
            last_error_code=source.last_error_code,
            last_error_message=source.last_error_message,
            pending_review_id=pending.get(source.id),
        )
        for source, provider in session.execute(query).all()
    ]


def remove_source(session: Session, actor: Actor, source_id: int, *, now: datetime) -> None:
    """Remove one of the person's own calendars with its bookings; one transaction.

    A care unit's source is not removed here (its bookings are the unit's); an
    administrator pauses it instead.
    """
    source = session.get(Source, source_id)
    if source is None or source.person_id is None:
        raise DomainError("source.not_found", "no such source")
    person_id = source.person_id
    if actor.role is not None and actor.role != Role.ADMIN:
        authorize(session, actor, person_id, "settings.write", now=now)
    if source.provider.kind != ProviderKind.PERSONAL:
        raise DomainError("source.not_personal", "only a personal calendar can be removed")
    try:
        begin_person_write(session, person_id)
        bookings = select(Booking.id).where(Booking.source_id == source_id)
        # A personal calendar's events get no reminders; should any refer to them, they go.
        session.execute(delete(Reminder).where(Reminder.booking_id.in_(bookings)))
        session.execute(
            update(InboundSms).where(InboundSms.booking_id.in_(bookings)).values(booking_id=None)
        )
        session.execute(delete(SourceReview).where(SourceReview.source_id == source_id))
        session.execute(delete(ImportRun).where(ImportRun.source_id == source_id))
        session.execute(delete(Booking).where(Booking.source_id == source_id))
        session.delete(source)
        calendar_changed(session, person_id)
        replan(session, person_id, now=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def set_enabled(session: Session, source_id: int, enabled: bool, *, now: datetime) -> None:
    """Pause or resume a source (administrators and the operator); one transaction."""
    source = session.get(Source, source_id)
    if source is None or source.person_id is None:
        raise DomainError("source.not_found", "no such source")
    source.enabled = enabled
    if enabled:
        source.next_due_utc = now
    session.commit()


# --- review -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewView:
    """A held read as shown for review: counts for everyone, titles only to the person."""

    review: SourceReview
    unit: str
    source_name: str
    cancelled: list[tuple[datetime, str]]  # (start, title) of what it would cancel


def read_review(session: Session, actor: Actor, review_id: int, *, now: datetime) -> ReviewView:
    """The review page's data; checks the actor, audits anyone but the person; commits."""
    review = session.get(SourceReview, review_id)
    if review is None:
        raise DomainError("review.not_found", "no such review")
    _may_review(session, actor, review.person_id, now)
    cancelled: list[tuple[datetime, str]] = []
    if actor.person_id == review.person_id:
        stored = load_stored(session, review.person_id, review.source_id)
        plan = plan_read([s.view for s in stored.values()], read_from_json(review.payload), now=now)
        cancelled = sorted(
            (stored[c.id].row.start_utc, stored[c.id].row.title) for c in plan.cancel
        )
    else:
        audit(
            session, actor, review.person_id, "source.review", now=now, detail=f"review {review.id}"
        )
    source = review.source
    view = ReviewView(review, source.provider.name, source.name, cancelled)
    session.commit()
    return view


def _may_review(session: Session, actor: Actor, person_id: int, now: datetime) -> None:
    if actor.role in (None, Role.ADMIN):
        return
    authorize(session, actor, person_id, "settings.write", now=now)


def decide_review(
    session: Session, actor: Actor, review_id: int, *, apply: bool, now: datetime
) -> SourceReview:
    """Apply the held read to what is stored now, or discard it; one transaction."""
    review = session.get(SourceReview, review_id)
    if review is None:
        raise DomainError("review.not_found", "no such review")
    _may_review(session, actor, review.person_id, now)
    try:
        begin_person_write(session, review.person_id)
        session.refresh(review)
        if review.state != ReviewState.PENDING:
            raise DomainError("review.decided", "this change has already been decided")
        source = review.source
        if apply:
            # Planned afresh against what is stored now, which may have changed meanwhile.
            apply_read(
                session,
                person_id=review.person_id,
                provider_id=source.provider_id,
                source_id=source.id,
                read=read_from_json(review.payload),
                now=now,
            )
            review.state = ReviewState.APPLIED
            succeeded(source, now, {})
            source.discarded_hash = ""
        else:
            review.state = ReviewState.DISCARDED
            source.discarded_hash = review.read_hash
            source.state = SourceState.STALE
            source.last_error_utc = now
            source.last_error_code = "sync.discarded"
            source.last_error_message = "a change was discarded on review"
        review.decided_utc = now
        review.decided_by = actor.label[:200]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return review


def pending_reviews(session: Session) -> list[SourceReview]:
    """Every held read, oldest first (the administrators' list); no commit."""
    return list(
        session.scalars(
            select(SourceReview)
            .where(SourceReview.state == ReviewState.PENDING)
            .order_by(SourceReview.created_utc, SourceReview.id)
        )
    )
