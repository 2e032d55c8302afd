"""Live sync: each synced source read on its schedule, never corrupting what is stored.

A read runs outside any transaction (it waits on the network); what it brought is then
applied in one transaction under the person's lock. A failed read changes no booking:
the source is marked stale (then failing) with the reason, and the last good data stays.
A read that would cancel more than a set share of the source's future bookings, or empty
a source that had some, is held as a :class:`SourceReview` until the person or an
administrator applies or discards it (:mod:`calendar_app.services.sources`).

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from calendar_app import sealing
from calendar_app.domain.bookings import read_to_json
from calendar_app.domain.reconcile import plan_read, still_to_come
from calendar_app.models import (
    Booking,
    Person,
    ReviewState,
    Source,
    SourceReview,
    SourceState,
)
from calendar_app.providers import AdapterRead, ProviderError, SourceConfig, Window
from calendar_app.providers.registry import adapter_for
from calendar_app.services import photos
from calendar_app.services.imports import ImportSummary, apply_plan, load_stored
from calendar_app.services.locking import begin_person_write
from calendar_app.services.source_health import settings_of

log = logging.getLogger(__name__)

# Settings naming a credential in the configuration (CALENDAR_APP_SOURCE_CREDENTIAL_<NAME>),
# for administrators who keep passwords out of the database altogether.
CREDENTIAL_PREFIX = "SOURCE_CREDENTIAL_"
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
    service_settings: Mapping[str, str] = field(default_factory=dict)

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
            service_settings={
                key: str(value) for key, value in config.items() if key.startswith("RIVTA_")
            },
        )


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
    personnummer: str = field(default="", repr=False)


def sync_due(
    factory: sessionmaker[Session],
    policy: SyncPolicy,
    *,
    worker: str,
    clock: Callable[[], datetime],
    source_id: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> list[SyncOutcome]:
    """Claim the due sources (or one) and read each; one source's failure stops no other.

    Claims are taken a batch at a time until nothing is due, so one run keeps up with
    however many sources fall due. When ``stopping()`` turns true, the read under way is
    finished and the sources not yet read are released.
    """
    outcomes: list[SyncOutcome] = []
    while not stopping():
        claimed = claim_due(
            factory,
            now=clock(),
            worker=worker,
            lease=policy.lease,
            limit=policy.batch,
            source_id=source_id,
        )
        for sid in claimed:
            if stopping():
                release_claims(factory, worker)
                return outcomes
            outcomes.append(sync_claimed(factory, sid, policy, worker=worker, clock=clock))
        if source_id is not None or len(claimed) < policy.batch:
            return outcomes
    return outcomes


def release_claims(factory: sessionmaker[Session], worker: str) -> int:
    """Give back every source ``worker`` still holds (it is stopping), so another scheduler
    reads them without waiting for the lease; returns how many."""
    with factory() as session:
        result = session.execute(
            update(Source)
            .where(Source.claimed_by == worker)
            .values(claimed_until_utc=None, claimed_by="")
        )
        session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


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
        select(Source, Person.timezone, Person.personnummer)
        .join(Person, Person.id == Source.person_id)
        .where(Source.id == source_id)
    ).first()
    if row is None:
        return None
    source, zone, personnummer = row
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
        personnummer=personnummer,
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
        personnummer=loaded.personnummer,
        service_settings=policy.service_settings,
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
        succeeded(source, now, result.cursor)
        return SyncOutcome(loaded.source_id, loaded.label, source.state.value, unchanged=True)
    photos.store(session, read.photos, now)  # held or applied, the bookings name them
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
    succeeded(source, now, result.cursor)
    return SyncOutcome(loaded.source_id, loaded.label, source.state.value, summary=summary)


def _supersede_reviews(session: Session, source_id: int, now: datetime) -> None:
    """A read that needed no review makes a held one moot."""
    session.execute(
        update(SourceReview)
        .where(SourceReview.source_id == source_id, SourceReview.state == ReviewState.PENDING)
        .values(state=ReviewState.SUPERSEDED, decided_utc=now, decided_by="sync")
    )


def succeeded(source: Source, now: datetime, cursor: Mapping[str, str]) -> None:
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
