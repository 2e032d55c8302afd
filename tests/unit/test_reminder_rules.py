"""The reminder planner: the person's rules, quiet hours and both 2026 DST weekends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_app.domain.errors import DomainError
from calendar_app.domain.reminders import QuietHours, Rule, RuleKind, Visit, plan

SE = ZoneInfo("Europe/Stockholm")
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
TWO_DAYS_18 = Rule(1, RuleKind.DAYS_BEFORE, days=2, at=time(18))
DAY_BEFORE_18 = Rule(2, RuleKind.DAYS_BEFORE, days=1, at=time(18))
SAME_DAY_0730 = Rule(3, RuleKind.DAYS_BEFORE, days=0, at=time(7, 30))
THREE_HOURS = Rule(4, RuleKind.HOURS_BEFORE, hours=3)
TRAVEL = Rule(5, RuleKind.TRANSPORT, days=3, at=time(10))
NIGHT = QuietHours(time(21), time(8))


def visit(local: datetime, **kw) -> Visit:
    return Visit(key=(1, ""), start=local.replace(tzinfo=SE).astimezone(UTC), **kw)


def sends(planned) -> dict[int, datetime]:
    return {p.rule.id: p.send_at.astimezone(SE).replace(tzinfo=None) for p in planned}


def test_the_default_style_rules_fall_on_the_chosen_local_days_and_times():
    planned = plan(
        [visit(datetime(2026, 12, 2, 10))],
        [TWO_DAYS_18, SAME_DAY_0730, THREE_HOURS],
        zone=SE,
        quiet=None,
        now=EARLY,
    )
    assert sends(planned) == {
        1: datetime(2026, 11, 30, 18),
        3: datetime(2026, 12, 2, 7, 30),
        4: datetime(2026, 12, 2, 7),
    }


def test_days_before_keep_their_wall_clock_time_across_the_spring_change():
    # Monday 30 March 2026: the clocks went forward on Sunday 29 March at 02.00.
    planned = plan(
        [visit(datetime(2026, 3, 30, 10))],
        [TWO_DAYS_18, DAY_BEFORE_18, SAME_DAY_0730],
        zone=SE,
        quiet=None,
        now=EARLY,
    )
    assert sends(planned) == {
        1: datetime(2026, 3, 28, 18),
        2: datetime(2026, 3, 29, 18),
        3: datetime(2026, 3, 30, 7, 30),
    }
    utc = {p.rule.id: p.send_at for p in planned}
    assert utc[1] == datetime(2026, 3, 28, 17, tzinfo=UTC)  # winter time
    assert utc[2] == datetime(2026, 3, 29, 16, tzinfo=UTC)  # summer time


def test_hours_before_count_real_hours_across_the_autumn_change():
    # Sunday 25 October 2026 has 25 hours: 24 hours before 10.00 is 11.00 the day before.
    planned = plan(
        [visit(datetime(2026, 10, 25, 10))],
        [Rule(9, RuleKind.HOURS_BEFORE, hours=24)],
        zone=SE,
        quiet=None,
        now=EARLY,
    )
    assert sends(planned) == {9: datetime(2026, 10, 24, 11)}


def test_a_rule_time_skipped_by_the_spring_change_is_sent_an_hour_later():
    planned = plan(
        [visit(datetime(2026, 3, 29, 12))],
        [Rule(7, RuleKind.DAYS_BEFORE, days=0, at=time(2, 30))],
        zone=SE,
        quiet=None,
        now=EARLY,
    )
    assert sends(planned) == {7: datetime(2026, 3, 29, 3, 30)}


def test_a_repeated_autumn_time_is_sent_once_at_its_first_instance():
    planned = plan(
        [visit(datetime(2026, 10, 25, 12))],
        [Rule(7, RuleKind.DAYS_BEFORE, days=0, at=time(2, 30))],
        zone=SE,
        quiet=None,
        now=EARLY,
    )
    assert [p.send_at for p in planned] == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_quiet_hours_move_a_reminder_to_their_end():
    planned = plan(
        [visit(datetime(2026, 12, 2, 10))],
        [SAME_DAY_0730, Rule(8, RuleKind.DAYS_BEFORE, days=1, at=time(22))],
        zone=SE,
        quiet=NIGHT,
        now=EARLY,
    )
    # 07.30 moves to 08.00; 22.00 the evening before moves to 08.00 the next morning.
    assert sends(planned) == {3: datetime(2026, 12, 2, 8), 8: datetime(2026, 12, 2, 8)}
    assert all(p.withdrawn is None for p in planned)


def test_a_reminder_quiet_hours_push_past_the_visit_is_withdrawn_visibly():
    planned = plan(
        [visit(datetime(2026, 12, 2, 7, 45))],
        [SAME_DAY_0730],
        zone=SE,
        quiet=NIGHT,
        now=EARLY,
    )
    assert [(p.rule.id, p.withdrawn) for p in planned] == [(3, "quiet_hours")]


def test_hours_before_does_not_apply_to_all_day_bookings():
    all_day = Visit(
        key=(1, ""),
        start=datetime(2026, 12, 1, 23, tzinfo=UTC),
        all_day=True,
        start_date=date(2026, 12, 2),
    )
    planned = plan([all_day], [THREE_HOURS, DAY_BEFORE_18], zone=SE, quiet=None, now=EARLY)
    assert sends(planned) == {2: datetime(2026, 12, 1, 18)}


def test_the_travel_reminder_comes_only_for_visits_that_need_transport():
    plain = visit(datetime(2026, 12, 2, 10))
    by_taxi = Visit(key=(2, ""), start=plain.start + timedelta(days=1), transport_needed=True)
    planned = plan([plain, by_taxi], [TRAVEL], zone=SE, quiet=None, now=EARLY)
    assert [(p.visit.key, p.send_at.astimezone(SE).date()) for p in planned] == [
        ((2, ""), date(2026, 11, 30))
    ]


def test_a_rule_whose_time_is_after_the_visit_does_not_apply_to_it():
    planned = plan(
        [visit(datetime(2026, 12, 2, 6))], [SAME_DAY_0730], zone=SE, quiet=None, now=EARLY
    )
    assert planned == []


def test_a_visit_booked_after_its_rules_times_gets_one_reminder_at_once():
    start = visit(datetime(2026, 12, 2, 14))
    now = start.start - timedelta(hours=2)
    planned = plan(
        [start], [TWO_DAYS_18, DAY_BEFORE_18, SAME_DAY_0730], zone=SE, quiet=None, now=now
    )
    assert [(p.rule.id, p.send_at, p.late) for p in planned] == [(3, now, True)]


def test_a_visit_that_has_begun_gets_nothing():
    start = visit(datetime(2026, 12, 2, 14))
    assert plan([start], [DAY_BEFORE_18], zone=SE, quiet=None, now=start.start) == []


@pytest.mark.parametrize(
    "rule",
    [
        Rule(1, RuleKind.DAYS_BEFORE, days=15, at=time(18)),
        Rule(1, RuleKind.DAYS_BEFORE, days=-1, at=time(18)),
        Rule(1, RuleKind.DAYS_BEFORE, days=1, at=None),
        Rule(1, RuleKind.HOURS_BEFORE, hours=0),
        Rule(1, RuleKind.HOURS_BEFORE, hours=73),
        Rule(1, RuleKind.TRANSPORT, days=0, at=time(10)),
    ],
)
def test_rules_that_cannot_work_are_refused_with_a_code(rule):
    with pytest.raises(DomainError, match="reminder.rule"):
        rule.check()
