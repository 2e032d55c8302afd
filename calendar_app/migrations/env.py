"""Alembic environment: the engine comes from the caller, the metadata from our models."""

from __future__ import annotations

from alembic import context

from calendar_app import models  # noqa: F401  (registers the tables)
from calendar_app.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
