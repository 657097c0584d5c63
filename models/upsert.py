"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike, for the rare writes outside the
message store (mailboxes from the settings, sender rules)."""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from models.base import Base, table


def insert_ignore(session: Session, model: type[Base], rows: list[dict]) -> None:
    """Insert the rows that conflict with none already there (plain SQL both databases speak)."""
    if not rows:
        return
    into, names = table(model), list(rows[0])
    statement = text(
        f"INSERT INTO {into.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
        " ON CONFLICT DO NOTHING"
    ).bindparams(*[bindparam(n, type_=into.c[n].type) for n in names])
    session.execute(statement, rows)
