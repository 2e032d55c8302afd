"""synced sources: settings, secrets, schedule, health, claims; held reads for review

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _source_before() -> sa.Table:
    """The table as 0001 made it, minus its unnamed UNIQUE (provider_id, name): SQLite's
    batch mode copies from this instead of reflecting, and so leaves the constraint out."""
    return sa.Table(
        "source",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider_id", sa.Integer(), sa.ForeignKey("provider.id"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("adapter", sa.String(length=20), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
    )


def upgrade() -> None:
    # Names become unique per unit only among shared sources (the partial indexes below).
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("source_provider_id_name_key", "source", type_="unique")
        batch = op.batch_alter_table("source", schema=None)
    else:
        batch = op.batch_alter_table("source", copy_from=_source_before(), recreate="always")
    with batch as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("settings", sa.Text(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("secrets", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("poll_minutes", sa.Integer(), nullable=False, server_default="30")
        )
        batch_op.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="new")
        )
        for name in ("last_attempt_utc", "last_success_utc", "last_error_utc"):
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("last_error_code", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "last_error_message", sa.String(length=300), nullable=False, server_default=""
            )
        )
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_due_utc", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until_utc", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("claimed_by", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("cursor", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("discarded_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("created_utc", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("created_by", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.create_foreign_key("fk_source_person", "person", ["person_id"], ["id"])
        batch_op.create_index("ix_source_due", ["next_due_utc"])
        batch_op.create_index("ix_source_person", ["person_id"])
        batch_op.create_index(
            "uq_source_shared_name",
            ["provider_id", "name"],
            unique=True,
            sqlite_where=sa.text("person_id IS NULL"),
            postgresql_where=sa.text("person_id IS NULL"),
        )
        batch_op.create_index(
            "uq_source_person_name",
            ["provider_id", "person_id", "name"],
            unique=True,
            sqlite_where=sa.text("person_id IS NOT NULL"),
            postgresql_where=sa.text("person_id IS NOT NULL"),
        )
    op.create_table(
        "source_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_hash", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("future_before", sa.Integer(), nullable=False),
        sa.Column("would_cancel", sa.Integer(), nullable=False),
        sa.Column("would_add", sa.Integer(), nullable=False),
        sa.Column("would_update", sa.Integer(), nullable=False),
        sa.Column("decided_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_source_review_person", "source_review", ["person_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_source_review_person", table_name="source_review")
    op.drop_table("source_review")
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_index("uq_source_person_name")
        batch_op.drop_index("uq_source_shared_name")
        batch_op.drop_index("ix_source_person")
        batch_op.drop_index("ix_source_due")
        batch_op.drop_constraint("fk_source_person", type_="foreignkey")
        for name in (
            "created_by",
            "created_utc",
            "discarded_hash",
            "cursor",
            "claimed_by",
            "claimed_until_utc",
            "next_due_utc",
            "failures",
            "last_error_message",
            "last_error_code",
            "last_error_utc",
            "last_success_utc",
            "last_attempt_utc",
            "state",
            "enabled",
            "poll_minutes",
            "secrets",
            "settings",
            "person_id",
        ):
            batch_op.drop_column(name)
        batch_op.create_unique_constraint("source_provider_id_name_key", ["provider_id", "name"])
