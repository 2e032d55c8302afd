"""indexes the load test found missing: care relationships, a unit's bookings, pushed
bookings by their system's id, time windows and helper grants per person

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 21:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_care_relationship_person_provider", "care_relationship", ["person_id", "provider_id"]),
    ("ix_booking_provider_range", "booking", ["provider_id", "range_start_utc"]),
    ("ix_booking_source_uid", "booking", ["source_id", "uid"]),
    ("ix_person_time_window_person", "person_time_window", ["person_id"]),
    ("ix_helper_grant_person", "helper_grant", ["person_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
