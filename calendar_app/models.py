"""Tables. Models hold data only: no I/O, no commits."""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from calendar_app.db import Base, UTCDateTime
from calendar_app.domain.reminders import RuleKind
from calendar_app.domain.visibility import ViewLevel


def _enum(cls: type[enum.Enum]) -> Enum:
    """Store an enum by its value, as a plain string column (portable, readable)."""
    return Enum(cls, native_enum=False, values_callable=lambda e: [m.value for m in e], length=20)


class ProviderKind(enum.StrEnum):
    REGION = "region"
    MUNICIPALITY = "municipality"
    OTHER = "other"
    PERSONAL = "personal"


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class BookingOrigin(enum.StrEnum):
    NATIVE = "native"
    SYNCED = "synced"


class VisitMode(enum.StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"


class Role(enum.StrEnum):
    PERSON = "person"
    HELPER = "helper"
    CAREGIVER = "caregiver"
    ADMIN = "admin"


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Twelve digits; never put in a URL, a log line or an SMS.
    personnummer: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Stockholm")
    # Skyddade personuppgifter: no address of hers reaches another unit, an SMS or a feed.
    # Set and ended by an administrator (with the decision's reference) or by the identity
    # broker's claim at sign-in; every change is in her audit log.
    protected_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    protected_identity_reference: Mapped[str | None] = mapped_column(String(200))
    protected_identity_changed_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    protected_identity_changed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Bumped by every write to the person's bookings; keys the merged-calendar cache.
    calendar_version: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the person deleted their account and data; the row stays (name and phone
    # cleared) only so that the audit log keeps saying whose calendar was read.
    deleted_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Provider(Base):
    """One care unit, e.g. "Vuxenpsykiatrin Växjö"."""

    __tablename__ = "provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[ProviderKind] = mapped_column(_enum(ProviderKind))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))
    # Whom the person may ask for ("vem ska jag kontakta?"), shown on their overview.
    contact_name: Mapped[str | None] = mapped_column(String(200))
    message_name: Mapped[str | None] = mapped_column(String(200))
    # JSON list of {"weekdays": [0..6], "start": "HH:MM", "end": "HH:MM"}; empty means
    # weekdays 08-16.
    opening_hours: Mapped[str] = mapped_column(Text, default="")

    sources: Mapped[list[Source]] = relationship(back_populates="provider")


BUILTIN_SOURCE = "builtin"


class SourceState(enum.StrEnum):
    """A synced source's health, as shown to the person, caregivers and administrators."""

    NEW = "new"  # not read yet
    OK = "ok"  # the last read was applied
    STALE = "stale"  # the last read failed (or was discarded): the last good data is shown
    FAILING = "failing"  # several reads in a row failed
    HELD = "held"  # a read that would cancel many bookings waits for review


class Source(Base):
    """One delivery channel of a unit's bookings; ``builtin`` holds the native ones.

    A file source (``person_id`` empty) is shared by uploads for any person; a synced
    source (``person_id`` set) is one person's calendar in a provider's system, read on a
    schedule by its adapter.
    """

    __tablename__ = "source"
    __table_args__ = (
        # Names are unique per unit among shared sources, and per unit and person among
        # synced ones (partial indexes: NULLs would not count as equal in PostgreSQL).
        Index(
            "uq_source_shared_name",
            "provider_id",
            "name",
            unique=True,
            sqlite_where=text("person_id IS NULL"),
            postgresql_where=text("person_id IS NULL"),
        ),
        Index(
            "uq_source_person_name",
            "provider_id",
            "person_id",
            "name",
            unique=True,
            sqlite_where=text("person_id IS NOT NULL"),
            postgresql_where=text("person_id IS NOT NULL"),
        ),
        Index("ix_source_due", "next_due_utc"),
        Index("ix_source_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    name: Mapped[str] = mapped_column(String(100))
    adapter: Mapped[str] = mapped_column(String(20))
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # The adapter's settings that are not secret, as JSON (e.g. a URL's host for display).
    settings: Mapped[str] = mapped_column(Text, default="{}")
    # Secret settings (a calendar URL with its token, a password) encrypted as one Fernet
    # token; never shown back. A password may instead be named by environment variable.
    secrets: Mapped[str] = mapped_column(Text, default="")
    poll_minutes: Mapped[int] = mapped_column(Integer, default=30)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[SourceState] = mapped_column(_enum(SourceState), default=SourceState.NEW)
    last_attempt_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_code: Mapped[str] = mapped_column(String(40), default="")
    last_error_message: Mapped[str] = mapped_column(String(300), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    next_due_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A scheduler's claim: no other takes the source until it ends (or the claim expires).
    claimed_until_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    # The adapter's sync cursor (ETag, Last-Modified, a sync token) as JSON.
    cursor: Mapped[str] = mapped_column(Text, default="")
    # The fingerprint of a read someone discarded on review: the same read is not held again.
    discarded_hash: Mapped[str] = mapped_column(String(64), default="")
    created_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200), default="")

    provider: Mapped[Provider] = relationship(back_populates="sources")


class ReviewState(enum.StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    DISCARDED = "discarded"
    SUPERSEDED = "superseded"  # a later read was applied without needing review


class SourceReview(Base):
    """A read held back because it would cancel too many of a source's future bookings.

    ``payload`` is the read itself (our own dataclasses as JSON), so that applying it
    later needs no second fetch.
    """

    __tablename__ = "source_review"
    __table_args__ = (Index("ix_source_review_person", "person_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    state: Mapped[ReviewState] = mapped_column(_enum(ReviewState))
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    read_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    read_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    future_before: Mapped[int] = mapped_column(Integer)  # future bookings stored
    would_cancel: Mapped[int] = mapped_column(Integer)
    would_add: Mapped[int] = mapped_column(Integer)
    would_update: Mapped[int] = mapped_column(Integer)
    decided_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str] = mapped_column(String(200), default="")

    source: Mapped[Source] = relationship()


class Photo(Base):
    """A picture of a practitioner as we serve it: re-encoded by us, never a provider's bytes.

    Keyed by the SHA-256 of the stored bytes, so the same picture from many bookings or
    reads is kept once; a booking names it in ``practitioner_photo``.
    """

    __tablename__ = "photo"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class Booking(Base):
    """A visit as received: a single event, a recurring series master, or one override.

    Identity is (source, person, uid, recurrence_key); ``recurrence_key`` is '' for a
    single event or series master and the RECURRENCE-ID in UTC (or a date) for an override.
    """

    __tablename__ = "booking"
    __table_args__ = (
        UniqueConstraint("source_id", "person_id", "uid", "recurrence_key"),
        Index("ix_booking_person_range", "person_id", "range_start_utc"),
        # A unit's day list, and a pushed booking found by its system's id (both found
        # scanning by the load test; see docs/benchmarks.md).
        Index("ix_booking_provider_range", "provider_id", "range_start_utc"),
        Index("ix_booking_source_uid", "source_id", "uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    uid: Mapped[str] = mapped_column(String(255))
    recurrence_key: Mapped[str] = mapped_column(String(20), default="")
    this_and_future: Mapped[bool] = mapped_column(Boolean, default=False)

    start_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    end_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    tzid: Mapped[str | None] = mapped_column(String(100))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    # Minimal normalised VEVENT (times, RRULE/RDATE/EXDATE, RECURRENCE-ID) for series and
    # overrides, expanded by recurring-ical-events; NULL for a single event.
    recurrence_ics: Mapped[str | None] = mapped_column(Text)
    # Bounds of every occurrence, for the range query; NULL end means open-ended.
    range_start_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    range_end_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)

    title: Mapped[str] = mapped_column(String(500), default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    practitioner_name: Mapped[str | None] = mapped_column(String(200))
    # The digest of a Photo we stored (never a provider's address).
    practitioner_photo: Mapped[str | None] = mapped_column(String(500))
    mode: Mapped[VisitMode] = mapped_column(_enum(VisitMode), default=VisitMode.IN_PERSON)
    interpreter: Mapped[bool] = mapped_column(Boolean, default=False)
    interpreter_language: Mapped[str | None] = mapped_column(String(50))
    transport_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancellation_terms: Mapped[str | None] = mapped_column(String(500))
    no_show_fee: Mapped[str | None] = mapped_column(String(200))
    transparent: Mapped[bool] = mapped_column(Boolean, default=False)
    # From a booking system that says so (crm:scheduling); NULL where the system is silent.
    time_type: Mapped[str | None] = mapped_column(String(100))
    care_type: Mapped[str | None] = mapped_column(String(100))
    cancel_allowed: Mapped[bool | None] = mapped_column(Boolean)
    rebook_allowed: Mapped[bool | None] = mapped_column(Boolean)
    message_allowed: Mapped[bool | None] = mapped_column(Boolean)

    status: Mapped[BookingStatus] = mapped_column(_enum(BookingStatus))
    booked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    clash_override_reason: Mapped[str | None] = mapped_column(String(500))
    # A series that vanished from a complete read after it had started is cancelled from
    # this instant on; its past occurrences stay as they were.
    cancelled_from_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    origin: Mapped[BookingOrigin] = mapped_column(_enum(BookingOrigin))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    last_modified_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Our own SEQUENCE and LAST-MODIFIED for feeds, whatever the provider keeps: the
    # sequence goes up when the time or the status changes, ``changed_utc`` on every change.
    feed_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    changed_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_utc: Mapped[datetime] = mapped_column(UTCDateTime)

    source: Mapped[Source] = relationship()
    provider: Mapped[Provider] = relationship()


class PersonPreferences(Base):
    """What suits the person: daily maximum, travel buffer, home address."""

    __tablename__ = "person_preferences"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    max_visits_per_day: Mapped[int | None] = mapped_column(Integer)
    travel_buffer_minutes: Mapped[int] = mapped_column(Integer, default=60)
    home_address: Mapped[str] = mapped_column(String(300), default="")
    changed_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class TimeWindowKind(enum.StrEnum):
    SUITABLE = "suitable"  # times that suit the person
    BUSY = "busy"  # work, school: a hard clash


class PersonTimeWindow(Base):
    """A weekly window: weekdays (0 = Monday, comma-separated) from one time to another."""

    __tablename__ = "person_time_window"
    __table_args__ = (Index("ix_person_time_window_person", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[TimeWindowKind] = mapped_column(_enum(TimeWindowKind))
    label: Mapped[str] = mapped_column(String(100), default="")
    weekdays: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class ImportRun(Base):
    """One read of a source for a person, with its counts and the events it skipped."""

    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    at_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    complete: Mapped[bool] = mapped_column(Boolean)
    added: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    skipped_detail: Mapped[str] = mapped_column(Text, default="")


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The caregiver's id in the county's identity broker (e.g. an HSA-id), for OIDC sign-in.
    staff_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A caregiver's own photo (the digest of a Photo we re-encoded), shown with the visits
    # they book.
    photo: Mapped[str | None] = mapped_column(String(64))

    provider: Mapped[Provider | None] = relationship()


class UserSession(Base):
    """A server-side login, so that a session can be ended from the server."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # For the idle limit; written at most once a minute.
    last_seen_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(20), default="password")


class LoginFailure(Base):
    """A failed sign-in, counted per account and per address to throttle guessing."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_username", "username", "at_utc"),
        Index("ix_login_failure_addr", "remote_addr", "at_utc"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """A provider system's or script's credential: bound to one unit and to scopes.

    Only the SHA-256 of the token is stored; the token is shown once, when made.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, shown in lists so that an administrator can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    scopes: Mapped[str] = mapped_column(String(300))
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_addr: Mapped[str] = mapped_column(String(64), default="")

    provider: Mapped[Provider] = relationship()


class HelperBasis(enum.StrEnum):
    """Why a helper may act: granted by the person, or appointed by a court."""

    RELATIVE = "narstaende"
    OMBUDSMAN = "personligt_ombud"
    TRUSTEE = "god_man"
    ADMINISTRATOR = "forvaltare"

    @property
    def by_court(self) -> bool:
        return self in (HelperBasis.TRUSTEE, HelperBasis.ADMINISTRATOR)


class HelperGrant(Base):
    """What a helper may do for a person, on what basis, and until when.

    ``helper_user_id`` is empty until the invited helper has accepted with an account.
    """

    __tablename__ = "helper_grant"
    __table_args__ = (Index("ix_helper_grant_person", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    helper_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    helper_name: Mapped[str] = mapped_column(String(200), default="")
    contact: Mapped[str] = mapped_column(String(200), default="")
    invitation_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    view_level: Mapped[ViewLevel | None] = mapped_column(_enum(ViewLevel))
    receives_reminders: Mapped[bool] = mapped_column(Boolean, default=False)
    manages_settings: Mapped[bool] = mapped_column(Boolean, default=False)
    basis: Mapped[HelperBasis] = mapped_column(_enum(HelperBasis))
    decision_reference: Mapped[str | None] = mapped_column(String(100))
    valid_until: Mapped[date | None] = mapped_column(Date)
    granted_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(40), default="person")
    withdrawn_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UnitConsent(Base):
    """The person's choices about one unit: what its caregivers see of other units, and
    whether the unit is sensitive (named neutrally in SMS and limited feeds)."""

    __tablename__ = "unit_consent"
    __table_args__ = (UniqueConstraint("person_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    others_level: Mapped[ViewLevel] = mapped_column(_enum(ViewLevel), default=ViewLevel.BUSY)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    # False: no reminders about this unit's visits (the person's per-unit opt-out).
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    # True: reminders may name the unit; otherwise they say "din vårdgivare" (the person
    # opts in, since a unit's name can tell what care it is).
    named_in_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class CareRelationship(Base):
    """A unit's care relationship with a person: the ground for its caregivers to look."""

    __tablename__ = "care_relationship"
    __table_args__ = (Index("ix_care_relationship_person_provider", "person_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    created_by: Mapped[str] = mapped_column(String(40))
    started_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(40))

    provider: Mapped[Provider] = relationship()


class AuditEvent(Base):
    """A read of a person's data by someone other than the person. Append-only."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_person_at", "person_id", "at_utc"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20), default="")
    actor_unit: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(String(500), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")


class ReminderRule(Base):
    """One of the person's reminder rules; no rules at all means the default."""

    __tablename__ = "reminder_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[RuleKind] = mapped_column(_enum(RuleKind))
    days: Mapped[int] = mapped_column(Integer, default=0)
    at_time: Mapped[time | None] = mapped_column(Time)
    hours: Mapped[int] = mapped_column(Integer, default=0)
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderSettings(Base):
    """Who gets the person's reminders, and the quiet hours (none when both are empty)."""

    __tablename__ = "reminder_settings"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    to_person: Mapped[bool] = mapped_column(Boolean, default=True)
    # A text when a visit someone was reminded of is cancelled (the person opts in).
    cancellation_notice: Mapped[bool] = mapped_column(Boolean, default=False)
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    changed_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderState(enum.StrEnum):
    PLANNED = "planned"
    SENDING = "sending"  # claimed by a scheduler, under a lease
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class Reminder(Base):
    """A row in the outbox: one reminder of one occurrence under one rule to one recipient.

    Every row ends as sent, delivered, failed (with the reason) or withdrawn (with the
    reason); none is deleted while the visit is ahead, so none is lost in silence.
    """

    __tablename__ = "reminder"
    __table_args__ = (
        Index("ix_reminder_due", "state", "send_at_utc"),
        Index("ix_reminder_person", "person_id", "visit_start_utc"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"))
    occurrence_key: Mapped[str] = mapped_column(String(40), default="")
    visit_start_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("reminder_rule.id"))
    rule_label: Mapped[str] = mapped_column(String(100))
    helper_grant_id: Mapped[int | None] = mapped_column(ForeignKey("helper_grant.id"))
    recipient_label: Mapped[str] = mapped_column(String(200))
    send_at_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[ReminderState] = mapped_column(_enum(ReminderState))
    reason: Mapped[str] = mapped_column(String(60), default="")
    lease_until_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[int] = mapped_column(Integer, default=0)
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class SmsOptOut(Base):
    """A number that replied STOPP: no reminders go to it until it replies START."""

    __tablename__ = "sms_opt_out"

    phone_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    at_utc: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundKind(enum.StrEnum):
    STOP = "stop"
    START = "start"
    CANCEL_REQUEST = "cancel_request"  # "AVBOKA": shown to the unit, cancels nothing itself
    MESSAGE = "message"


class InboundSms(Base):
    """A reply to a reminder, kept for the caregivers of the visit or of the person."""

    __tablename__ = "inbound_sms"
    __table_args__ = (Index("ix_inbound_provider", "provider_id", "received_utc"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[InboundKind] = mapped_column(_enum(InboundKind))
    from_masked: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    body: Mapped[str] = mapped_column(Text, default="")


class Feed(Base):
    """A calendar feed someone subscribes to: a secret URL of which only the SHA-256 is kept.

    A helper's feed (``helper_grant_id`` set) has no level of its own: it shows what the
    grant allows at the time of each fetch, and nothing once the grant ends.
    """

    __tablename__ = "feed"
    __table_args__ = (Index("ix_feed_person", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    level: Mapped[ViewLevel | None] = mapped_column(_enum(ViewLevel))
    helper_grant_id: Mapped[int | None] = mapped_column(ForeignKey("helper_grant.id"))
    alarms: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(5), default="sv")
    created_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    created_role: Mapped[str] = mapped_column(String(20))
    revoked_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most once a minute; every fetch is in the audit log.
    last_fetched_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FeedRender(Base):
    """A feed's last rendering, served as is while ``render_key`` still matches."""

    __tablename__ = "feed_render"

    feed_id: Mapped[int] = mapped_column(ForeignKey("feed.id"), primary_key=True)
    # What the bytes were made from: the calendar's version, the day, level and options.
    render_key: Mapped[str] = mapped_column(String(100))
    etag: Mapped[str] = mapped_column(String(64))
    last_modified_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    rendered_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    # Kept gzip-compressed: a tenth of the size to read, and sent as it is to the calendar
    # apps that accept gzip (all the common ones do).
    body_gzip: Mapped[bytes] = mapped_column(LargeBinary)
