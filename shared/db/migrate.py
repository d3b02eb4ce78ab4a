"""Schema migration from code: `recap migrate` and `recap up` run Alembic to head."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.config import get_settings


def _scripts() -> Path:
    # Found, not imported: the migrations import shared (models, settings), and shared must not import them.
    spec = find_spec("migrations")
    assert spec is not None and spec.origin is not None, "the migrations package is not installed"
    return Path(spec.origin).parent


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_scripts()))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None) -> None:
    command.upgrade(alembic_config(url), "head")


def at_head(url: str | None = None) -> bool:
    """True when the database's schema is the latest migration's."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    config = alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(url or get_settings().database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    finally:
        engine.dispose()
