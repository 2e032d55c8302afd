"""Practitioner photos kept in the database, once per picture."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calendar_app.domain.photos import PhotoData, PhotoError, reencode
from calendar_app.models import Booking, BookingOrigin, Photo, User
from calendar_app.services.locking import calendar_changed


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


def set_own_photo(session: Session, user_id: int, data: bytes, *, now: datetime) -> str:
    """A caregiver's own photo: checked to be a real picture of sane size, re-encoded,
    stored, and shown with the visits they booked that are still ahead; commits.

    Raises :class:`PhotoError` (and changes nothing) for anything that is no usable
    picture.
    """
    photo = reencode(data)
    store(session, [photo], now)
    user = session.get(User, user_id)
    if user is None:
        raise PhotoError("photo.user", "no such account")
    user.photo = photo.digest
    session.execute(
        update(Booking)
        .where(
            Booking.booked_by_user_id == user_id,
            Booking.origin == BookingOrigin.NATIVE,
            Booking.start_utc > now,
        )
        .values(practitioner_photo=photo.digest)
    )
    for person_id in session.scalars(
        select(Booking.person_id)
        .where(Booking.booked_by_user_id == user_id, Booking.start_utc > now)
        .distinct()
    ):
        calendar_changed(session, person_id)
    session.commit()
    return photo.digest
