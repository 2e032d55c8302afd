"""a unit's contact person (for the person's overview); a caregiver's own photo

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("photo")
    with op.batch_alter_table("provider", schema=None) as batch_op:
        batch_op.drop_column("contact_name")
