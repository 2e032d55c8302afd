import random
from datetime import UTC, datetime, timedelta

from calendar_app.domain.intervals import Interval, overlapping_pairs, overlaps

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
H = timedelta(hours=1)


def test_back_to_back_visits_do_not_overlap():
    assert not overlaps(T0, T0 + H, T0 + H, T0 + 2 * H)


def test_visits_sharing_a_minute_overlap():
    assert overlaps(T0, T0 + H, T0 + H - timedelta(minutes=1), T0 + 2 * H)


def test_a_zero_length_event_inside_a_visit_overlaps_it_but_not_at_its_end():
    assert overlaps(T0 + H / 2, T0 + H / 2, T0, T0 + H)
    assert not overlaps(T0 + H, T0 + H, T0, T0 + H)
    assert overlaps(T0, T0, T0, T0 + H)


def test_sweep_finds_exactly_the_pairs_a_brute_force_check_finds():
    rng = random.Random(20261123)
    items = []
    for i in range(300):
        start = T0 + timedelta(minutes=15 * rng.randrange(0, 400))
        items.append(Interval(i, start, start + timedelta(minutes=15 * rng.randrange(0, 8))))
    expected = {i.key: set() for i in items}
    for a in items:
        for b in items:
            if a.key != b.key and overlaps(a.start, a.end, b.start, b.end):
                expected[a.key].add(b.key)
    assert overlapping_pairs(items) == {k: v for k, v in expected.items() if v}
