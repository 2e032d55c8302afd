"""the person's choice of a text when a reminded visit is cancelled

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminder_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cancellation_notice", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("reminder_settings", schema=None) as batch_op:
        batch_op.drop_column("cancellation_notice")
