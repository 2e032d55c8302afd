"""The person's preferences: times that suit, busy periods, daily maximum, travel, home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calendar_app.domain.errors import DomainError
from calendar_app.models import PersonPreferences, PersonTimeWindow, TimeWindowKind
from calendar_app.services.access import Actor, authorize


@dataclass(frozen=True)
class WindowInput:
    kind: str
    weekdays: tuple[int, ...]
    start: time
    end: time
    label: str = ""


@dataclass(frozen=True)
class PreferencesView:
    max_visits_per_day: int | None
    travel_buffer_minutes: int
    home_address: str
    windows: list[PersonTimeWindow]


def read_preferences(
    session: Session, actor: Actor, person_id: int, *, now: datetime
) -> PreferencesView:
    """The preferences as stored (defaults where none are); audited for helpers."""
    authorize(session, actor, person_id, "settings.read", now=now)
    stored = session.get(PersonPreferences, person_id)
    windows = list(
        session.scalars(
            select(PersonTimeWindow)
            .where(PersonTimeWindow.person_id == person_id)
            .order_by(PersonTimeWindow.kind, PersonTimeWindow.start_time)
        )
    )
    session.commit()
    return PreferencesView(
        max_visits_per_day=stored.max_visits_per_day if stored else None,
        travel_buffer_minutes=stored.travel_buffer_minutes if stored else 60,
        home_address=stored.home_address if stored else "",
        windows=windows,
    )


def _check_window(window: WindowInput) -> None:
    if window.kind not in {k.value for k in TimeWindowKind}:
        raise DomainError("preferences.kind", "a window is 'suitable' or 'busy'")
    if not window.weekdays or any(not 0 <= d <= 6 for d in window.weekdays):
        raise DomainError("preferences.weekdays", "choose weekdays 0 (Monday) to 6 (Sunday)")
    if window.end <= window.start:
        raise DomainError("preferences.window", "a window must end after it starts")


def _window_row(person_id: int, window: WindowInput) -> PersonTimeWindow:
    return PersonTimeWindow(
        person_id=person_id,
        kind=TimeWindowKind(window.kind),
        label=window.label.strip()[:100],
        weekdays=",".join(str(d) for d in sorted(set(window.weekdays))),
        start_time=window.start,
        end_time=window.end,
    )


def save_preferences(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    max_visits_per_day: int | None,
    travel_buffer_minutes: int,
    home_address: str,
    windows: list[WindowInput] | None,
    now: datetime,
) -> None:
    """Store the preferences (and, when given, replace all windows) in one transaction."""
    authorize(session, actor, person_id, "settings.write", now=now)
    if max_visits_per_day is not None and not 1 <= max_visits_per_day <= 20:
        raise DomainError("preferences.max", "the daily maximum is 1 to 20 visits")
    if not 0 <= travel_buffer_minutes <= 240:
        raise DomainError("preferences.travel", "the travel buffer is 0 to 240 minutes")
    for window in windows or []:
        _check_window(window)
    stored = session.get(PersonPreferences, person_id)
    if stored is None:
        stored = PersonPreferences(person_id=person_id)
        session.add(stored)
    stored.max_visits_per_day = max_visits_per_day
    stored.travel_buffer_minutes = travel_buffer_minutes
    stored.home_address = home_address.strip()[:300]
    stored.changed_utc = now
    if windows is not None:
        session.execute(delete(PersonTimeWindow).where(PersonTimeWindow.person_id == person_id))
        for window in windows:
            session.add(_window_row(person_id, window))
    session.commit()


def add_window(
    session: Session, actor: Actor, person_id: int, window: WindowInput, *, now: datetime
) -> None:
    """Add one weekly window."""
    authorize(session, actor, person_id, "settings.write", now=now)
    _check_window(window)
    session.add(_window_row(person_id, window))
    session.commit()


def remove_window(
    session: Session, actor: Actor, person_id: int, window_id: int, *, now: datetime
) -> None:
    """Remove one weekly window."""
    authorize(session, actor, person_id, "settings.write", now=now)
    window = session.get(PersonTimeWindow, window_id)
    if window is None or window.person_id != person_id:
        raise DomainError("preferences.not_found", "no such window")
    session.delete(window)
    session.commit()
