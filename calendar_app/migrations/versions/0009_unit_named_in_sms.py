"""the person's opt-in to a unit's name in reminders

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 08:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("unit_consent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("named_in_sms", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("unit_consent", schema=None) as batch_op:
        batch_op.drop_column("named_in_sms")
