"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike (concurrent runners race on contacts and blobs)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

from models.direct import python_defaults


@lru_cache(maxsize=None)
def _statement(table, columns: tuple[str, ...]) -> tuple[TextClause, dict]:
    # Plain SQL both SQLite (3.24+) and PostgreSQL speak, built once per table and column set and
    # run executemany-style. The dialect `insert(...).values(rows).on_conflict_do_nothing()` it
    # replaces was compiled afresh on every call: 12% of the runner's time on the corpus.
    # Python-side column defaults (Core applies them itself) are filled in here.
    defaults = python_defaults(table, columns)
    names = columns + tuple(defaults)
    statement = text(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
                     " ON CONFLICT DO NOTHING").bindparams(*[bindparam(n, type_=table.c[n].type) for n in names])
    return statement, defaults


def insert_ignore(session: Session, model: type, rows: list[dict]) -> None:
    if not rows:
        return
    statement, defaults = _statement(model.__table__, tuple(rows[0]))
    if defaults:
        rows = [{**row, **{name: make() for name, make in defaults.items()}} for row in rows]
    session.execute(statement, rows if len(rows) > 1 else rows[0])
