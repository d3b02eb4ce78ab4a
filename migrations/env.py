"""Alembic environment: migrates the database named by the config (or DATABASE_URL) to our SQLModel schema."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import shared.db.models  # noqa: F401  (fills SQLModel.metadata)
from shared.config import get_settings
from shared.db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_offline() -> None:
    context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # Batch mode lets later ALTERs run on SQLite too.
        context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
