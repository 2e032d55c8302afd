"""SMS replies: opt-outs and inbound messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 07:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_opt_out",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("at_utc", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )
    op.create_table(
        "inbound_sms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("from_masked", sa.String(length=20), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["provider.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbound_provider", "inbound_sms", ["provider_id", "received_utc"])


def downgrade() -> None:
    op.drop_index("ix_inbound_provider", table_name="inbound_sms")
    op.drop_table("inbound_sms")
    op.drop_table("sms_opt_out")
