"""Alembic environment: runs migrations on the connection `models.db.Database.migrate` hands in."""

from alembic import context
from sqlalchemy import create_engine

import models
from models.base import include_name

config = context.config
target_metadata = models.Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # the alembic command line, e.g. for `alembic revision --autogenerate`
        with create_engine(config.get_main_option("sqlalchemy.url", "")).connect() as conn:
            _migrate(conn)
            conn.commit()
    else:
        _migrate(connection)


def _migrate(connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, include_name=include_name
    )
    with context.begin_transaction():
        context.run_migrations()


run()
