"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike (concurrent runners race on contacts and blobs)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from models.direct import DirectStatement, python_defaults


@lru_cache(maxsize=None)
def _statement(table, columns: tuple[str, ...]) -> DirectStatement:
    # Plain SQL both SQLite (3.24+) and PostgreSQL speak, built once per table and column set and
    # run executemany-style on the DB-API cursor (models.direct). The dialect
    # `insert(...).values(rows).on_conflict_do_nothing()` it replaces was compiled afresh on every
    # call: 12% of the runner's time on the corpus. Python-side column defaults are filled in.
    defaults = python_defaults(table, columns)
    names = columns + tuple(defaults)
    statement = text(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
                     " ON CONFLICT DO NOTHING").bindparams(*[bindparam(n, type_=table.c[n].type) for n in names])
    return DirectStatement(statement, defaults)


def insert_ignore(session: Session, model: type, rows: list[dict]) -> None:
    if rows:
        _statement(model.__table__, tuple(rows[0])).many(session, rows)
