"""Serialising writes that concern one person."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.models import Person


def begin_person_write(session: Session, person_id: int) -> Person | None:
    """Start a write transaction holding the person's lock, and return the person.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the person row. SQLite: ``BEGIN IMMEDIATE``
    (set up in :mod:`calendar_app.db`), which takes the database's write lock at once.
    """
    session.connection(execution_options={"begin_immediate": True})
    return session.scalars(select(Person).where(Person.id == person_id).with_for_update()).first()
