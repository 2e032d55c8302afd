"""preferences and native bookings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:53:20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_preferences",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("max_visits_per_day", sa.Integer(), nullable=True),
        sa.Column("travel_buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("home_address", sa.String(length=300), nullable=False),
        sa.Column("changed_utc", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "person_time_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("suitable", "busy", name="timewindowkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("weekdays", sa.String(length=20), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("booked_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("clash_override_reason", sa.String(length=500), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_booking_booked_by_user", "app_user", ["booked_by_user_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_constraint("fk_booking_booked_by_user", type_="foreignkey")
        batch_op.drop_column("clash_override_reason")
        batch_op.drop_column("booked_by_user_id")
    op.drop_table("person_time_window")
    op.drop_table("person_preferences")
