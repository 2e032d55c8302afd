"""Prometheus metrics at ``/metrics``, and the health figures behind them.

Two kinds of figures. Requests (count by route and status, latency) are counted in the
process that answered them; under gunicorn every worker writes them to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums the files (``MultiProcessCollector``).
Everything else (reminders, the due queue, sources) is read from the database at scrape
time by :class:`DatabaseCollector`, so it is right whichever web worker, scheduler or
command sent, synced or changed it, and needs no process to keep a count.

Nothing here carries personal data: labels are unit names, adapter kinds, states, HTTP
methods, URL rules (``/people/<int:person_id>/week``, never the path) and status codes.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Column, Connection, MetaData, String, Table, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from calendar_app.clock import Clock
from calendar_app.db import session_scope
from calendar_app.models import Provider, Reminder, ReminderState, Source, SourceState

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

PREFIX = "calendar_app"
# Requests that matched no route (404, 405) share one label value: any path a client
# makes up would otherwise be a new time series.
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a feed's 304 (about a millisecond) to a cold PDF or a slow provider.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Reminders by state are counted over those whose send time is at most this long ago (and
# all ahead): the total of every reminder ever sent only grows, and counting it would scan
# the whole outbox at every scrape; this window is a range of the (state, send time) index.
REMINDER_WINDOW = timedelta(hours=24)


def multiprocess_mode() -> bool:
    """True when prometheus_client keeps values in files (``PROMETHEUS_MULTIPROC_DIR`` was
    set when it was imported, as gunicorn's configuration does): then only the files
    hold every worker's counts."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


# --- the request metrics --------------------------------------------------------------------


class RequestMetrics:
    """Requests by method, route and status, and their latency by method and route."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route (URL rule) and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route (URL rule).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "other"
        route = route or UNMATCHED
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def families(self) -> Iterable[Metric]:
        """This process's request metrics (every worker's, read from the files, under
        gunicorn)."""
        if multiprocess_mode():
            return MultiProcessCollector(None).collect()
        return [*self.requests.collect(), *self.latency.collect()]


@dataclass(frozen=True)
class RouteFigures:
    method: str
    route: str
    count: int
    mean_ms: float


@dataclass(frozen=True)
class RequestFigures:
    """Requests since the service started, for the admin page."""

    total: int = 0
    by_class: dict[str, int] = field(default_factory=dict)  # "2xx" -> count
    mean_ms: float | None = None
    p95_ms: float | None = None  # the upper bound of the bucket holding the 95th percentile
    busiest: list[RouteFigures] = field(default_factory=list)


def request_figures(metrics: RequestMetrics, top: int = 10) -> RequestFigures:
    """Totals, status classes, mean and 95th percentile latency and the busiest routes."""
    by_class: dict[str, int] = {}
    counts: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str], float] = {}
    buckets: dict[float, float] = {}
    for family in metrics.families():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{PREFIX}_http_requests_total":
                status_class = f"{str(labels['status'])[:1]}xx"
                by_class[status_class] = by_class.get(status_class, 0) + int(sample.value)
            elif sample.name == f"{PREFIX}_http_request_duration_seconds_count":
                key = (labels["method"], labels["route"])
                counts[key] = counts.get(key, 0) + int(sample.value)
            elif sample.name == f"{PREFIX}_http_request_duration_seconds_sum":
                key = (labels["method"], labels["route"])
                sums[key] = sums.get(key, 0.0) + sample.value
            elif sample.name == f"{PREFIX}_http_request_duration_seconds_bucket":
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    total = sum(counts.values())
    if not total:
        return RequestFigures(by_class=by_class)
    p95 = next((bound for bound, seen in sorted(buckets.items()) if seen >= 0.95 * total), None)
    busiest = sorted(counts, key=lambda key: counts[key], reverse=True)[:top]
    return RequestFigures(
        total=total,
        by_class=dict(sorted(by_class.items())),
        mean_ms=1000 * sum(sums.values()) / total,
        p95_ms=None if p95 is None or p95 == float("inf") else 1000 * p95,
        busiest=[
            RouteFigures(
                method,
                route,
                counts[(method, route)],
                1000 * sums[(method, route)] / counts[(method, route)],
            )
            for method, route in busiest
        ],
    )


# --- the database's schema ------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSchema:
    """The Alembic revisions this code knows, and the head(s) it expects."""

    heads: frozenset[str]
    known: frozenset[str]


@functools.cache
def code_schema() -> CodeSchema:
    """Read once per process (at start-up) from the migration scripts shipped with it."""
    from calendar_app.migrations import HERE

    config = Config()
    config.set_main_option("script_location", str(HERE))
    script = ScriptDirectory.from_config(config)
    return CodeSchema(
        heads=frozenset(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )


@dataclass(frozen=True)
class SchemaState:
    """``ok``; ``behind`` (a migration is missing); ``unknown`` (a revision this code does
    not know: newer code migrated it, or another application); ``missing`` (no schema)."""

    status: str
    current: tuple[str, ...]
    expected: tuple[str, ...]


# Alembic's own table of applied revisions, read directly: its MigrationContext would log
# two INFO lines at every probe.
_ALEMBIC_VERSION = Table(
    "alembic_version", MetaData(), Column("version_num", String(32), primary_key=True)
)


def schema_state(connection: Connection) -> SchemaState:
    """Compare the database's Alembic revision with the code's head."""
    code = code_schema()
    current: frozenset[str] = frozenset()
    if inspect(connection).has_table(_ALEMBIC_VERSION.name):
        current = frozenset(connection.scalars(select(_ALEMBIC_VERSION.c.version_num)))
    if current == code.heads:
        status = "ok"
    elif not current:
        status = "missing"
    elif current <= code.known:
        status = "behind"
    else:
        status = "unknown"
    return SchemaState(status, tuple(sorted(current)), tuple(sorted(code.heads)))


# --- figures read from the database ---------------------------------------------------------


@dataclass(frozen=True)
class SourceGroup:
    """The synced sources of one unit read by one adapter kind."""

    provider: str
    adapter: str
    by_state: dict[str, int]
    lag_seconds: float | None  # since the oldest last good read in the group
    failures: int  # failed reads in a row, summed over the group

    @property
    def troubled(self) -> int:
        return sum(self.by_state.get(state, 0) for state in ("stale", "failing", "held"))


@dataclass(frozen=True)
class HealthFigures:
    reminders: dict[str, int]  # state -> count, send time within REMINDER_WINDOW or ahead
    due: int  # planned with a send time that has come
    oldest_due_seconds: float | None
    sources: list[SourceGroup]


def read_health(session: Session, *, now: datetime) -> HealthFigures:
    """Reminders by state, the due queue and the synced sources per unit and adapter."""
    reminders = {state.value: 0 for state in ReminderState}
    for state, count in session.execute(
        select(Reminder.state, func.count())
        .where(Reminder.send_at_utc >= now - REMINDER_WINDOW)
        .group_by(Reminder.state)
    ):
        reminders[ReminderState(state).value] = int(count)
    due, oldest = session.execute(
        select(func.count(), func.min(Reminder.send_at_utc)).where(
            Reminder.state == ReminderState.PLANNED, Reminder.send_at_utc <= now
        )
    ).one()
    return HealthFigures(
        reminders=reminders,
        due=int(due),
        oldest_due_seconds=(now - oldest).total_seconds() if oldest is not None else None,
        sources=_source_groups(session, now),
    )


def _source_groups(session: Session, now: datetime) -> list[SourceGroup]:
    # Grouped per unit and adapter kind, not per source: a county has tens of thousands of
    # sources (one per person and unit), and a time series per source would swamp
    # Prometheus and name, through its id, one person's care. A unit's system that is down
    # shows as its group failing; the admin's sources page finds the single source.
    last_good = func.min(func.coalesce(Source.last_success_utc, Source.created_utc))
    rows = session.execute(
        select(
            Provider.name,
            Source.adapter,
            Source.state,
            func.count(),
            last_good,
            func.sum(Source.failures),
        )
        .join(Provider, Provider.id == Source.provider_id)
        .where(Source.person_id.is_not(None), Source.enabled.is_(True))
        .group_by(Provider.name, Source.adapter, Source.state)
    )
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for provider, adapter, state, count, oldest, failures in rows:
        group = groups.setdefault(
            (provider, adapter), {"by_state": {}, "oldest": None, "failures": 0}
        )
        group["by_state"][SourceState(state).value] = int(count)
        if oldest is not None and (group["oldest"] is None or oldest < group["oldest"]):
            group["oldest"] = oldest
        group["failures"] += int(failures or 0)
    return [
        SourceGroup(
            provider=provider,
            adapter=adapter,
            by_state={s.value: g["by_state"].get(s.value, 0) for s in SourceState},
            lag_seconds=(now - g["oldest"]).total_seconds() if g["oldest"] else None,
            failures=g["failures"],
        )
        for (provider, adapter), g in sorted(groups.items())
    ]


class DatabaseCollector:
    """Figures read from the database at each scrape (whoever wrote the rows)."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self.session_factory = session_factory
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        up = GaugeMetricFamily(
            f"{PREFIX}_database_up", "1 if the database answered this scrape, else 0."
        )
        try:
            with session_scope(self.session_factory) as session:
                schema = schema_state(session.connection())
                figures = read_health(session, now=now)
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            f"{PREFIX}_schema_at_head",
            "1 if the database schema is at the Alembic head this code expects, else 0.",
            value=1 if schema.status == "ok" else 0,
        )
        yield from _reminder_families(figures)
        yield from _source_families(figures.sources)


def _reminder_families(figures: HealthFigures) -> Iterator[Metric]:
    hours = int(REMINDER_WINDOW.total_seconds() // 3600)
    by_state = GaugeMetricFamily(
        f"{PREFIX}_reminders",
        f"Reminders by state, of those with a send time from {hours} hours ago on.",
        labels=["state"],
    )
    for state, count in figures.reminders.items():
        by_state.add_metric([state], count)
    yield by_state
    yield GaugeMetricFamily(
        f"{PREFIX}_reminders_due",
        "Planned reminders whose send time has come (the dispatch queue).",
        value=figures.due,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_reminders_due_oldest_age_seconds",
        "How long the oldest due reminder has waited past its send time (0 if none).",
        value=figures.oldest_due_seconds or 0.0,
    )


def _source_families(groups: list[SourceGroup]) -> Iterator[Metric]:
    labels = ["provider", "adapter"]
    sources = GaugeMetricFamily(
        f"{PREFIX}_sources",
        "Enabled synced sources by unit, adapter kind and state.",
        labels=[*labels, "state"],
    )
    lag = GaugeMetricFamily(
        f"{PREFIX}_source_sync_lag_seconds",
        "Per unit and adapter kind: time since the oldest last good read (or since the "
        "source was added, if never read).",
        labels=labels,
    )
    failures = GaugeMetricFamily(
        f"{PREFIX}_source_failures",
        "Per unit and adapter kind: failed reads in a row, summed over the sources.",
        labels=labels,
    )
    for group in groups:
        key = [group.provider, group.adapter]
        for state, count in group.by_state.items():
            sources.add_metric([*key, state], count)
        if group.lag_seconds is not None:
            lag.add_metric(key, group.lag_seconds)
        failures.add_metric(key, group.failures)
    yield sources
    yield lag
    yield failures


# --- wiring and the endpoint ---------------------------------------------------------------


class Metrics:
    """An app's metrics: its request counters and where a scrape reads everything from."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self.multiprocess = multiprocess_mode()
        self.database = DatabaseCollector(session_factory, clock)
        # One registry per app, not prometheus_client's global one: a test process builds
        # many apps, each counting its own requests. In multi-process mode the counters
        # are registered nowhere: the files are their registry (registering them as well
        # would export every figure twice).
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(None if self.multiprocess else self.registry)
        if not self.multiprocess:
            self.registry.register(self.database)
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    def scrape_registry(self) -> CollectorRegistry:
        """What ``/metrics`` exposes: every worker's requests and the database's figures."""
        if not self.multiprocess:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.database)
        return registry


def init_app(app: Flask) -> Metrics:
    """Make the app's metrics and register ``/metrics``."""
    metrics = Metrics(app.extensions["session_factory"], app.extensions["clock"])
    app.extensions["metrics"] = metrics
    app.register_blueprint(bp)
    return metrics


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _refusal() -> Response | None:
    """None if the client may read the metrics, else the answer that refuses it."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), str(token).encode()
        ):
            return None
        return Response(
            "A metrics token is required.\n",
            401,
            content_type="text/plain; charset=utf-8",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    # Without a token, only this host: and not a request a local reverse proxy forwarded
    # (it arrives from loopback, but on behalf of anyone).
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if _is_loopback(request.remote_addr) and not forwarded:
        return None
    return Response(
        "Metrics are served to this host only (or set CALENDAR_APP_METRICS_TOKEN).\n",
        403,
        content_type="text/plain; charset=utf-8",
    )


@bp.get("/metrics")
def scrape() -> ResponseReturnValue:
    """The Prometheus exposition: request metrics and the database's figures."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    # The database figures are read in a session of their own: end this request's
    # transaction first, or on SQLite (where every transaction holds the write lock) the
    # scrape waits for itself until the busy timeout and reports the database down.
    request_session = g.get("db")
    if request_session is not None:
        request_session.commit()
    registry = current_app.extensions["metrics"].scrape_registry()
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(registry), content_type=content_type)
