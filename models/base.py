"""The declarative base and the column helpers every model shares."""

from __future__ import annotations

from datetime import datetime, UTC
from typing import cast

from sqlalchemy import DateTime, Identity, MetaData, Table
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Ids are never reused (SQLite AUTOINCREMENT, a PostgreSQL identity): our signed Message-IDs carry
# ticket ids and the spam ledger's keys message ids, so a reused id would thread a late reply into a
# stranger's ticket, or unlearn someone else's message.
NEVER_REUSED = {"sqlite_autoincrement": True}


def serial_id():
    """The integer primary key of a table with `NEVER_REUSED` in its table arguments."""
    return mapped_column(Identity(), primary_key=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def table(model: type[Base]) -> Table:
    """A model's Core table, for Core statements (SQLAlchemy types `__table__` as any FROM clause)."""
    return cast(Table, model.__table__)


# Made by their migration in each dialect's own DDL, not by the models: the full-text index
# (tickets.search) is an FTS5 virtual table with its shadow tables on SQLite, a tsvector table on PostgreSQL.
UNMODELLED_TABLES = ("message_search",)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """For Alembic's comparison of the models with a database: leave the unmodelled tables out."""
    return not (type_ == "table" and name and name.startswith(UNMODELLED_TABLES))
