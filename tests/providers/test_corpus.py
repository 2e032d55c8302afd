"""Every third-party ICS file in ../shared/corpus/ics imports as recorded (DESIGN §4).

``corpus_expectations.toml`` says, per file, whether it is refused (and with which code)
or imported (how many events are skipped as damaged, how many occurrences the merged
calendar shows in a window). A corpus file without an entry fails, and so does an entry
for a file that is not there.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from calendar_app.models import Booking
from calendar_app.providers import ProviderError
from calendar_app.services.calendar import merged_calendar
from tests.conftest import ICS
from tests.support.helpers import add_person, do_import

EXPECTATIONS_PATH = Path(__file__).with_name("corpus_expectations.toml")
EXPECTATIONS: dict[str, dict[str, Any]] = tomllib.loads(
    EXPECTATIONS_PATH.read_text(encoding="utf-8")
)
FILES = sorted(path.relative_to(ICS).as_posix() for path in ICS.rglob("*.ics"))
ZONE = ZoneInfo("Europe/Stockholm")
MAX_DAYS = 400


def _window(expected: dict[str, Any]) -> tuple[date, date]:
    first, end = (date.fromisoformat(day) for day in expected["window"])
    return first, end


def test_the_corpus_is_there():
    assert ICS.is_dir(), f"corpus folder {ICS} is missing"
    assert FILES, f"no .ics files under {ICS}"


def test_every_expectation_names_a_corpus_file():
    assert sorted(set(EXPECTATIONS) - set(FILES)) == []


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_expectation_is_well_formed(name):
    expected = EXPECTATIONS[name]
    assert expected.get("why", "").strip(), f"{name}: say why"
    if expected["outcome"] == "refused":
        assert set(expected) == {"outcome", "code", "why"}, name
        assert expected["code"].startswith("ics."), name
        return
    assert expected["outcome"] == "imported", name
    assert set(expected) == {"outcome", "window", "occurrences", "skipped", "why"}, name
    first, end = _window(expected)
    assert 0 < (end - first).days <= MAX_DAYS, name
    assert expected["occurrences"] >= 0 and expected["skipped"] >= 0, name


def _bookings(session) -> int:
    return session.scalar(select(func.count()).select_from(Booking))


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name, session, now):
    expected = EXPECTATIONS.get(name)
    if expected is None:
        pytest.fail(f"{name} has no entry in {EXPECTATIONS_PATH.name}")
    data = (ICS / name).read_bytes()
    person = add_person(session, now)
    why = f"{name}: {expected['why']}"

    if expected["outcome"] == "refused":
        with pytest.raises(ProviderError) as caught:
            do_import(session, person, data, now)
        assert caught.value.code == expected["code"], why
        session.rollback()
        assert _bookings(session) == 0, f"{why} (a refused file stored bookings)"
        return

    first, end = _window(expected)
    summary = do_import(session, person, data, now)
    assert len(summary.skipped) == expected["skipped"], (why, summary.skipped)
    occurrences = merged_calendar(session, person.id, first, end, zone=ZONE, max_days=MAX_DAYS)
    assert len(occurrences) == expected["occurrences"], why

    again = do_import(session, person, data, now)
    assert (again.added, again.updated) == (0, 0), f"{why} (re-import: {again.line()})"
    assert len(again.skipped) == expected["skipped"], why
    after = merged_calendar(session, person.id, first, end, zone=ZONE, max_days=MAX_DAYS)
    assert len(after) == expected["occurrences"], f"{why} (after re-import)"
