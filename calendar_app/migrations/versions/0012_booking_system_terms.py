"""what a booking system says of a time: time type, care type, cancel/rebook/message allowed

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_FLAGS = ("cancel_allowed", "rebook_allowed", "message_allowed")


def upgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_type", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("care_type", sa.String(length=100), nullable=True))
        for name in _FLAGS:
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        for name in (*reversed(_FLAGS), "care_type", "time_type"):
            batch_op.drop_column(name)
