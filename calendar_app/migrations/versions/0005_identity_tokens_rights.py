"""sign-in methods, login throttling, API tokens, deleted people

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 06:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_app_user_staff_id", ["staff_id"])
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_utc", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("method", sa.String(length=20), nullable=False, server_default="password")
        )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_utc", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_username", "login_failure", ["username", "at_utc"])
    op.create_index("ix_login_failure_addr", "login_failure", ["remote_addr", "at_utc"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=300), nullable=False),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_addr", sa.String(length=64), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["provider_id"], ["provider.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_token")
    op.drop_index("ix_login_failure_addr", table_name="login_failure")
    op.drop_index("ix_login_failure_username", table_name="login_failure")
    op.drop_table("login_failure")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("deleted_utc")
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_column("method")
        batch_op.drop_column("last_seen_utc")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint("uq_app_user_staff_id", type_="unique")
        batch_op.drop_column("staff_id")
