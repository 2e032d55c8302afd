"""Live sync: each synced source read on its schedule, never corrupting what is stored.

A read runs outside any transaction (it waits on the network); what it brought is then
applied in one transaction under the person's lock. A failed read changes no booking:
the source is marked stale (then failing) with the reason, and the last good data stays.
A read that would cancel more than a set share of the source's future bookings, or empty
a source that had some, is held as a :class:`SourceReview` until the person or an
administrator applies or discards it.

Two schedulers never read one source at once: a source is claimed by a conditional
UPDATE (claimed only if unclaimed or its claim expired), which works alike on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from calendar_app import sealing
from calendar_app.domain.bookings import read_from_json, read_to_json
from calendar_app.domain.errors import DomainError
from calendar_app.domain.reconcile import plan_read, still_to_come
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
from calendar_app.providers import AdapterRead, ProviderError, SourceConfig, Window
from calendar_app.providers.registry import adapter_for
from calendar_app.services.access import AccessDenied, Actor, audit, authorize
from calendar_app.services.directory import ensure_care_relationship, get_or_add_provider
from calendar_app.services.imports import ImportSummary, apply_plan, apply_read, load_stored
from calendar_app.services.locking import begin_person_write, calendar_changed
from calendar_app.services.reminders import replan
from calendar_app.services.source_health import pending_by_source, settings_of

log = logging.getLogger(__name__)

# The unit that holds a person's own calendars (work, school, a phone's published URL).
PERSONAL_UNIT = "Min kalender"
# Settings naming a credential in the configuration (CALENDAR_APP_SOURCE_CREDENTIAL_<NAME>),
# for administrators who keep passwords out of the database altogether.
CREDENTIAL_PREFIX = "SOURCE_CREDENTIAL_"
MIN_POLL_MINUTES, MAX_POLL_MINUTES = 5, 24 * 60
# Reads cover a year back and two ahead; adapters of whole feeds return everything anyway.
WINDOW_BACK, WINDOW_AHEAD = timedelta(days=365), timedelta(days=730)
FIRST_RETRY_MINUTES = 5
JITTER = 0.1  # +-10 % of the interval, so sources added together drift apart


def worker_name() -> str:
    """Who claims: host, process and a random part (unique per scheduler process)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class SyncPolicy:
    """The sync settings, read once from the configuration."""

    secret_key: str
    credentials: Mapping[str, str]
    allowed_hosts: frozenset[str]
    max_bytes: int
    timeout: float
    lease: timedelta
    mass_cancel_share: float
    failing_after: int
    poll_minutes: int
    batch: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SyncPolicy:
        return cls(
            secret_key=str(config["SOURCE_SECRET_KEY"]),
            credentials={
                key[len(CREDENTIAL_PREFIX) :]: str(value)
                for key, value in config.items()
                if key.startswith(CREDENTIAL_PREFIX)
            },
            allowed_hosts=frozenset(
                h.strip().lower()
                for h in str(config["SOURCE_ALLOWED_HOSTS"]).replace(" ", ",").split(",")
                if h.strip()
            ),
            max_bytes=int(config["MAX_ICS_BYTES"]),
            timeout=float(config["SYNC_TIMEOUT_SECONDS"]),
            lease=timedelta(seconds=int(config["SYNC_LEASE_SECONDS"])),
            mass_cancel_share=float(config["SYNC_MASS_CANCEL_SHARE"]),
            failing_after=int(config["SYNC_FAILING_AFTER"]),
            poll_minutes=int(config["SYNC_POLL_MINUTES"]),
            batch=int(config["SYNC_BATCH"]),
        )


# --- adding and listing sources -----------------------------------------------------------


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


# --- claiming and reading -----------------------------------------------------------------


def claim_due(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    worker: str,
    lease: timedelta,
    limit: int,
    source_id: int | None = None,
) -> list[int]:
    """Claim up to ``limit`` due sources (or the one given, due or not) for ``worker``."""
    free = or_(Source.claimed_until_utc.is_(None), Source.claimed_until_utc < now)
    query = select(Source.id).where(Source.person_id.is_not(None), Source.enabled.is_(True), free)
    if source_id is not None:
        query = query.where(Source.id == source_id)
    else:
        query = (
            query.where(Source.next_due_utc <= now)
            .order_by(Source.next_due_utc, Source.id)
            .limit(limit)
        )
    claimed: list[int] = []
    with factory() as session:
        for candidate in session.scalars(query).all():
            # Claimed only if still free: a concurrent claimer's UPDATE waits for ours and
            # then finds the row taken (PostgreSQL), or never overlaps (SQLite's one writer).
            result = session.execute(
                update(Source)
                .where(Source.id == candidate, free)
                .values(claimed_until_utc=now + lease, claimed_by=worker)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(candidate)
        session.commit()
    return claimed


@dataclass(frozen=True)
class SyncOutcome:
    """What one read of one source did."""

    source_id: int
    label: str
    state: str
    summary: ImportSummary | None = None
    unchanged: bool = False  # the system said nothing changed (304)
    error_code: str = ""
    error_message: str = ""
    review_id: int | None = None

    def line(self) -> str:
        """The CLI's line for this source."""
        head = f"source {self.source_id} ({self.label}): {self.state}"
        if self.error_code:
            return f"{head}: {self.error_code}: {self.error_message}"
        if self.review_id is not None:
            return f"{head}: held for review ({self.error_message})"
        if self.unchanged:
            return f"{head}, not changed since the last read"
        if self.summary is not None:
            return f"{head}, {self.summary.line()}"
        return head


@dataclass(frozen=True)
class _Loaded:
    source_id: int
    person_id: int
    provider_id: int
    label: str
    adapter: str
    settings: dict[str, str]
    sealed: str
    cursor: dict[str, str]
    zone: str
    poll_minutes: int


def sync_due(
    factory: sessionmaker[Session],
    policy: SyncPolicy,
    *,
    worker: str,
    clock: Callable[[], datetime],
    source_id: int | None = None,
) -> list[SyncOutcome]:
    """Claim the due sources (or one) and read each; one source's failure stops no other.

    Claims are taken a batch at a time until nothing is due, so one run keeps up with
    however many sources fall due.
    """
    outcomes: list[SyncOutcome] = []
    while True:
        claimed = claim_due(
            factory,
            now=clock(),
            worker=worker,
            lease=policy.lease,
            limit=policy.batch,
            source_id=source_id,
        )
        for sid in claimed:
            outcomes.append(sync_claimed(factory, sid, policy, worker=worker, clock=clock))
        if source_id is not None or len(claimed) < policy.batch:
            return outcomes


def sync_claimed(
    factory: sessionmaker[Session],
    source_id: int,
    policy: SyncPolicy,
    *,
    worker: str,
    clock: Callable[[], datetime],
) -> SyncOutcome:
    """Read one claimed source and record what came of it; releases the claim."""
    now = clock()
    with factory() as session:
        # The claim is renewed for this read, and the read skipped if the claim was lost:
        # a batch may take longer than one lease, but no single read can (its deadline).
        renewed = session.execute(
            update(Source)
            .where(Source.id == source_id, Source.claimed_by == worker)
            .values(claimed_until_utc=now + policy.lease)
        )
        loaded = _load(session, source_id) if renewed.rowcount == 1 else None  # type: ignore[attr-defined]
        session.commit()
    if loaded is None:
        return SyncOutcome(source_id, "?", "skipped")
    try:
        result = _read(loaded, policy, now)
    except ProviderError as exc:
        return _record_failure(factory, loaded, policy, worker, now, exc.code, exc.message)
    except Exception as exc:  # one source's bug must not stop the others; no data logged
        log.exception("source %s: unexpected %s", source_id, type(exc).__name__)
        return _record_failure(
            factory, loaded, policy, worker, now, "source.internal", "unexpected error"
        )
    return _record_read(factory, loaded, policy, worker, clock(), result)


def _load(session: Session, source_id: int) -> _Loaded | None:
    row = session.execute(
        select(Source, Person.timezone)
        .join(Person, Person.id == Source.person_id)
        .where(Source.id == source_id)
    ).first()
    if row is None:
        return None
    source, zone = row
    try:
        cursor = json.loads(source.cursor) if source.cursor else {}
    except ValueError:
        cursor = {}
    return _Loaded(
        source_id=source.id,
        person_id=int(source.person_id or 0),
        provider_id=source.provider_id,
        label=f"{source.provider.name} – {source.name}",
        adapter=source.adapter,
        settings=settings_of(source),
        sealed=source.secrets,
        cursor={str(k): str(v) for k, v in cursor.items()} if isinstance(cursor, dict) else {},
        zone=zone,
        poll_minutes=source.poll_minutes,
    )


def _read(loaded: _Loaded, policy: SyncPolicy, now: datetime) -> AdapterRead:
    adapter = adapter_for(loaded.adapter)
    secrets = sealing.unseal(loaded.sealed, policy.secret_key)
    reference = loaded.settings.get("password_from")
    if reference:
        if reference not in policy.credentials:
            raise ProviderError(
                "source.credential_unknown", "the credential it names is not configured"
            )
        secrets["password"] = policy.credentials[reference]
    config = SourceConfig(
        settings=loaded.settings,
        secrets=secrets,
        default_zone=loaded.zone,
        max_bytes=policy.max_bytes,
        timeout=policy.timeout,
        allowed_hosts=policy.allowed_hosts,
    )
    return adapter.read(config, Window(now - WINDOW_BACK, now + WINDOW_AHEAD), loaded.cursor)


def _next_due(minutes: float, now: datetime) -> datetime:
    return now + timedelta(minutes=minutes * random.uniform(1 - JITTER, 1 + JITTER))


def _release(source: Source, worker: str) -> None:
    if source.claimed_by == worker:
        source.claimed_until_utc = None
        source.claimed_by = ""


def _record_failure(
    factory: sessionmaker[Session],
    loaded: _Loaded,
    policy: SyncPolicy,
    worker: str,
    now: datetime,
    code: str,
    message: str,
) -> SyncOutcome:
    """Mark the source stale (or failing) with the reason; no booking is touched."""
    log.warning("source %s: read failed: %s", loaded.source_id, code)
    with factory() as session:
        source = session.get(Source, loaded.source_id)
        if source is None:
            return SyncOutcome(loaded.source_id, loaded.label, "missing", error_code=code)
        source.failures += 1
        source.state = (
            SourceState.FAILING if source.failures >= policy.failing_after else SourceState.STALE
        )
        source.last_attempt_utc = now
        source.last_error_utc = now
        source.last_error_code = code[:40]
        source.last_error_message = message[:300]
        # Retry soon after a first failure, then less often, never less than the interval.
        retry = min(loaded.poll_minutes, FIRST_RETRY_MINUTES * 2 ** (source.failures - 1))
        source.next_due_utc = _next_due(retry, now)
        _release(source, worker)
        state = source.state.value
        session.commit()
    return SyncOutcome(
        loaded.source_id, loaded.label, state, error_code=code, error_message=message
    )


def _record_read(
    factory: sessionmaker[Session],
    loaded: _Loaded,
    policy: SyncPolicy,
    worker: str,
    now: datetime,
    result: AdapterRead,
) -> SyncOutcome:
    with factory() as session:
        try:
            outcome = _apply_or_hold(session, loaded, policy, worker, now, result)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    if outcome.review_id is not None:
        log.warning("source %s: read held for review %s", loaded.source_id, outcome.review_id)
    return outcome


def _apply_or_hold(
    session: Session,
    loaded: _Loaded,
    policy: SyncPolicy,
    worker: str,
    now: datetime,
    result: AdapterRead,
) -> SyncOutcome:
    person = begin_person_write(session, loaded.person_id)
    source = session.get(Source, loaded.source_id)
    if source is None:
        return SyncOutcome(loaded.source_id, loaded.label, "missing")
    source.last_attempt_utc = now
    source.next_due_utc = _next_due(source.poll_minutes, now)
    _release(source, worker)
    if person is None or person.deleted_utc is not None:
        source.enabled = False  # nothing of a deleted person's comes back
        return SyncOutcome(loaded.source_id, loaded.label, "disabled")
    read = result.read
    if read is None:
        # Nothing changed: every booking still listed is confirmed as of now.
        session.execute(
            update(Booking)
            .where(
                Booking.person_id == loaded.person_id,
                Booking.source_id == loaded.source_id,
                Booking.content_hash != "absent",
            )
            .values(last_seen_utc=now)
        )
        _supersede_reviews(session, source.id, now)
        _succeeded(source, now, result.cursor)
        return SyncOutcome(loaded.source_id, loaded.label, source.state.value, unchanged=True)
    stored = load_stored(session, loaded.person_id, loaded.source_id)
    plan = plan_read([s.view for s in stored.values()], read, now=now)
    future = sum(1 for s in stored.values() if still_to_come(s.view, now))
    payload = read_to_json(read)
    read_hash = hashlib.sha256(payload.encode()).hexdigest()
    too_many = plan.cancelled > policy.mass_cancel_share * future
    if future and (too_many or not read.bookings):
        # The cursor is not kept: the next poll reads the whole calendar again, so a 304
        # can never confirm what this read would have cancelled.
        if read_hash == source.discarded_hash:
            source.state = SourceState.STALE
            source.last_error_code = "sync.discarded"
            source.last_error_message = "the same change was discarded on review"
            return SyncOutcome(
                loaded.source_id,
                loaded.label,
                source.state.value,
                error_code="sync.discarded",
                error_message=source.last_error_message,
            )
        review = _hold(session, source, loaded.person_id, now, payload, read_hash, plan, future)
        return SyncOutcome(
            loaded.source_id,
            loaded.label,
            source.state.value,
            review_id=review.id,
            error_message=f"would cancel {plan.cancelled} of {future} future bookings",
        )
    summary = apply_plan(
        session,
        person_id=loaded.person_id,
        provider_id=loaded.provider_id,
        source_id=loaded.source_id,
        stored=stored,
        plan=plan,
        read=read,
        now=now,
        record_unchanged=False,
    )
    _supersede_reviews(session, source.id, now)
    _succeeded(source, now, result.cursor)
    return SyncOutcome(loaded.source_id, loaded.label, source.state.value, summary=summary)


def _supersede_reviews(session: Session, source_id: int, now: datetime) -> None:
    """A read that needed no review makes a held one moot."""
    session.execute(
        update(SourceReview)
        .where(SourceReview.source_id == source_id, SourceReview.state == ReviewState.PENDING)
        .values(state=ReviewState.SUPERSEDED, decided_utc=now, decided_by="sync")
    )


def _succeeded(source: Source, now: datetime, cursor: Mapping[str, str]) -> None:
    source.state = SourceState.OK
    source.failures = 0
    source.last_success_utc = now
    source.last_read_at = now
    source.cursor = json.dumps(dict(cursor), sort_keys=True) if cursor else ""


def _hold(
    session: Session,
    source: Source,
    person_id: int,
    now: datetime,
    payload: str,
    read_hash: str,
    plan: Any,
    future: int,
) -> SourceReview:
    """Keep the read for review, replacing an older pending one of the same source."""
    review = session.scalars(
        select(SourceReview).where(
            SourceReview.source_id == source.id, SourceReview.state == ReviewState.PENDING
        )
    ).first()
    if review is None:
        review = SourceReview(
            source_id=source.id, person_id=person_id, state=ReviewState.PENDING, created_utc=now
        )
        session.add(review)
    review.read_utc = now
    review.read_hash = read_hash
    review.payload = payload
    review.future_before = future
    review.would_cancel = plan.cancelled
    review.would_add = plan.added
    review.would_update = plan.updated
    source.state = SourceState.HELD
    session.flush()
    return review


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
            _succeeded(source, now, {})
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
