"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import models
from models.base import include_name
from models.db import Database


def test_the_migrations_build_exactly_the_models_schema(database_url):
    db = Database(database_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            assert (
                compare_metadata(
                    MigrationContext.configure(conn, opts={"include_name": include_name}), models.Base.metadata
                )
                == []
            )
    finally:
        db.dispose()
