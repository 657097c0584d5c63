"""The message store's one write mechanism: every statement of the store runs through `Sql`.

Statements are SQLAlchemy Core, built once at import; `one` and `run` execute one, `many` runs an
executemany. A faster way to run them would go here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


class Sql:
    @staticmethod
    def one(session: Session, statement, params: dict[str, Any] | None = None):
        """The first row it returns (a RETURNING or a lookup), or None."""
        return session.execute(statement, params or {}).first()

    @staticmethod
    def all(session: Session, statement, params: dict[str, Any] | None = None) -> list:
        return session.execute(statement, params or {}).all()

    @staticmethod
    def run(session: Session, statement, params: dict[str, Any] | None = None) -> int:
        """Run it; how many rows it changed."""
        return session.execute(statement, params or {}).rowcount

    @staticmethod
    def many(session: Session, statement, rows: list[dict[str, Any]]) -> None:
        """Run it once per row, as one executemany."""
        if rows:
            session.execute(statement, rows)
