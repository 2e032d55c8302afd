"""When reminders go out: the person's rules applied to their visits. Pure: no I/O.

Rules ("2 dagar före kl. 18.00", "samma dag kl. 07.30", "3 timmar före", "boka resa 3
dagar före kl. 10.00") give each visit its send times; quiet hours move a send time to
their end, and a reminder that would then come after the visit has started is withdrawn,
visibly, never dropped in silence.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calendar_app.domain.errors import DomainError

MAX_DAYS_BEFORE = 14
MAX_HOURS_BEFORE = 72


class RuleKind(enum.StrEnum):
    DAYS_BEFORE = "days_before"  # N days before, at a wall-clock time (0 = the same day)
    HOURS_BEFORE = "hours_before"  # N hours before the start; not for all-day bookings
    TRANSPORT = "transport"  # "boka resa": N days before, only visits that need transport


@dataclass(frozen=True)
class Rule:
    """One of the person's reminder rules."""

    id: int
    kind: RuleKind
    days: int = 0
    at: time | None = None
    hours: int = 0

    def check(self) -> Rule:
        """The rule itself, or ``reminder.rule`` saying what is wrong with it."""
        if self.kind == RuleKind.HOURS_BEFORE:
            if not 1 <= self.hours <= MAX_HOURS_BEFORE:
                raise DomainError("reminder.rule", f"hours before must be 1 to {MAX_HOURS_BEFORE}")
            return self
        if self.at is None:
            raise DomainError("reminder.rule", "a days-before rule needs a time of day")
        low = 1 if self.kind == RuleKind.TRANSPORT else 0
        if not low <= self.days <= MAX_DAYS_BEFORE:
            raise DomainError("reminder.rule", f"days before must be {low} to {MAX_DAYS_BEFORE}")
        return self


DEFAULT_RULES = (Rule(id=0, kind=RuleKind.DAYS_BEFORE, days=1, at=time(18, 0)),)


@dataclass(frozen=True)
class QuietHours:
    """No reminder between ``start`` and ``end`` (local time; may span midnight)."""

    start: time
    end: time

    def contains(self, clock: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end


@dataclass(frozen=True)
class Visit:
    """A visit to remind of: ``key`` names the occurrence (booking id, recurrence id)."""

    key: tuple[int, str]
    start: datetime
    all_day: bool = False
    start_date: date | None = None
    transport_needed: bool = False


@dataclass(frozen=True)
class Planned:
    """A reminder's send time, or why it is withdrawn (``withdrawn`` is then set)."""

    visit: Visit
    rule: Rule
    send_at: datetime
    withdrawn: str | None = None
    late: bool = False  # the rule's time had passed: sent at once, one per visit


def _wall_clock(day: date, clock: time, zone: ZoneInfo) -> datetime:
    # A wall-clock time skipped by the spring change is read with the winter offset, which
    # lands an hour later in summer time; a repeated autumn time takes its first instance.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _first_send(visit: Visit, rule: Rule, zone: ZoneInfo) -> datetime | None:
    if rule.kind == RuleKind.HOURS_BEFORE:
        return None if visit.all_day else visit.start - timedelta(hours=rule.hours)
    if rule.kind == RuleKind.TRANSPORT and not visit.transport_needed:
        return None
    assert rule.at is not None
    day = (
        visit.start_date
        if visit.all_day and visit.start_date
        else visit.start.astimezone(zone).date()
    )
    return _wall_clock(day - timedelta(days=rule.days), rule.at, zone)


def _after_quiet_hours(instant: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    local = instant.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return instant
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # the quiet night ends the next morning
    return _wall_clock(day, quiet.end, zone)


def plan(
    visits: Iterable[Visit],
    rules: Iterable[Rule],
    *,
    zone: ZoneInfo,
    quiet: QuietHours | None,
    now: datetime,
) -> list[Planned]:
    """Send times for every visit still ahead under every rule that applies to it.

    A rule whose time falls at or after the visit's start does not apply to that visit
    (e.g. "samma dag kl. 18" for a morning visit). A visit booked after some of its rules'
    times gets one reminder at once, for the latest of them, not one per rule. A time in
    quiet hours moves to their end; if that is not before the visit, it is withdrawn.
    """
    rules = list(rules)
    planned: list[Planned] = []
    for visit in visits:
        if visit.start <= now:
            continue
        late: list[tuple[datetime, Rule]] = []
        for rule in rules:
            first = _first_send(visit, rule, zone)
            if first is None or first >= visit.start:
                continue
            if first < now:
                late.append((first, rule))
                continue
            send_at = _after_quiet_hours(first, quiet, zone) if quiet else first
            withdrawn = "quiet_hours" if send_at >= visit.start else None
            planned.append(Planned(visit, rule, send_at, withdrawn))
        if late and not any(p.visit is visit and p.withdrawn is None for p in planned):
            _, rule = max(late, key=lambda item: item[0])
            send_at = _after_quiet_hours(now, quiet, zone) if quiet else now
            withdrawn = "quiet_hours" if send_at >= visit.start else None
            planned.append(Planned(visit, rule, send_at, withdrawn, late=True))
    return planned


def alarm_offsets(
    visit: Visit, rules: Iterable[Rule], *, zone: ZoneInfo, quiet: QuietHours | None
) -> tuple[timedelta, ...]:
    """How long before the visit each rule's reminder comes, for alarms in a feed.

    The same times as the text messages (quiet hours included), but for every visit,
    past or future, since a feed does not change with the clock; earliest first.
    """
    found = set()
    for rule in rules:
        first = _first_send(visit, rule, zone)
        if first is None:
            continue
        send_at = _after_quiet_hours(first, quiet, zone) if quiet else first
        if send_at < visit.start:
            found.add(visit.start - send_at)
    return tuple(sorted(found, reverse=True))
