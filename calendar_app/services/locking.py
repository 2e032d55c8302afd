"""Serialising writes that concern one person."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from calendar_app.models import Person


def begin_person_write(session: Session, person_id: int) -> Person | None:
    """Start a write transaction holding the person's lock, and return the person.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the person row. SQLite: every transaction
    starts with ``BEGIN IMMEDIATE`` (see :mod:`calendar_app.db`), which holds the database's
    write lock, so the row lock is implied there. The row is read afresh under the lock,
    even if the session holds an older copy.
    """
    query = (
        select(Person)
        .where(Person.id == person_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(query).first()


# Where a session keeps the people whose calendars its transaction changed, so that their
# feeds can be rendered again once it commits (see services.feeds.keep_feeds_current).
CHANGED_PEOPLE = "calendar_changed_people"


def calendar_changed(session: Session, person_id: int) -> None:
    """Note in the write transaction that what the person's calendar shows changed (their
    bookings, or a setting a feed follows); no commit."""
    session.info.setdefault(CHANGED_PEOPLE, set()).add(person_id)
    session.execute(
        update(Person)
        .where(Person.id == person_id)
        .values(calendar_version=Person.calendar_version + 1)
    )
