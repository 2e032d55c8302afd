"""subscribable calendar feeds; a booking's own sequence and change time for them

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("feed_sequence", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("changed_utc", sa.DateTime(timezone=True), nullable=True))
    # What is known of each stored booking's last change: the provider's word, or when we
    # first saw it.
    op.execute("UPDATE booking SET changed_utc = COALESCE(last_modified_utc, first_seen_utc)")
    op.create_table(
        "feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column(
            "level",
            sa.Enum("full", "time_place", "busy", name="viewlevel", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("helper_grant_id", sa.Integer(), nullable=True),
        sa.Column("alarms", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_role", sa.String(length=20), nullable=False),
        sa.Column("revoked_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetched_utc", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["helper_grant_id"], ["helper_grant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_feed_person", "feed", ["person_id"])
    op.create_table(
        "feed_render",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("render_key", sa.String(length=100), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("last_modified_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rendered_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body_gzip", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feed.id"]),
        sa.PrimaryKeyConstraint("feed_id"),
    )


def downgrade() -> None:
    op.drop_table("feed_render")
    op.drop_index("ix_feed_person", table_name="feed")
    op.drop_table("feed")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("changed_utc")
        batch_op.drop_column("feed_sequence")
