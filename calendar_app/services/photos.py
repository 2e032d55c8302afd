"""Practitioner photos kept in the database, once per picture."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calendar_app.domain.photos import PhotoData
from calendar_app.models import Photo


def store(session: Session, photos: Iterable[PhotoData], now: datetime) -> None:
    """Keep each picture not yet stored; part of the caller's transaction.

    Two reads may bring the same picture at once: the insert skips a digest that is
    already there instead of failing the whole read.
    """
    rows = {
        p.digest: {
            "digest": p.digest,
            "content_type": p.content_type,
            "data": p.data,
            "width": p.width,
            "height": p.height,
            "created_utc": now,
        }
        for p in photos
    }
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Photo).values(list(rows.values())).on_conflict_do_nothing())


def find(session: Session, digest: str) -> Photo | None:
    return session.scalars(select(Photo).where(Photo.digest == digest)).first()
