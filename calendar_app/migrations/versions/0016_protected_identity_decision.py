"""protected identity (skyddade personuppgifter) with its decision: the reference and when
and by whom it was last set or ended

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("protected_identity_reference", sa.String(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("protected_identity_changed_utc", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("protected_identity_changed_by", sa.String(length=200), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("protected_identity_changed_by")
        batch_op.drop_column("protected_identity_changed_utc")
        batch_op.drop_column("protected_identity_reference")
