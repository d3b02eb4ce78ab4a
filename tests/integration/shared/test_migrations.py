"""The migrations build exactly the schema the models declare (a model change without a migration fails here)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, create_engine

import shared.db.models  # noqa: F401  (registers the tables)
from shared.config import Settings


def test_the_migrated_schema_matches_the_models(db_url) -> None:
    engine = create_engine(Settings(database_url=db_url).database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []
