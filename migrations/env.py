"""Alembic environment: the URL comes from the caller's config, the metadata from the models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

target_metadata = SQLModel.metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None, "sqlalchemy.url must be set by the caller"

if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
