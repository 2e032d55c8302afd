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


def calendar_changed(session: Session, person_id: int) -> None:
    """Note in the write transaction that the person's bookings changed (no commit)."""
    session.execute(
        update(Person)
        .where(Person.id == person_id)
        .values(calendar_version=Person.calendar_version + 1)
    )
