"""The statements the runner makes for every message, run straight on the DB-API cursor.

SQLAlchemy's work around each call (cache keys, parameter coercion, an execution context, a
result object) was about 40 % of the runner's CPU held under the GIL on the corpus (py-spy --gil,
bench/ingest.py end to end): 0.03-0.05 ms a statement on top of the database's own work. A
`DirectStatement` is still SQL that SQLAlchemy compiled for the session's dialect (quoting,
paramstyle), and its parameters still go through the column types' own bind processors (datetimes,
JSON); only the per-call machinery is skipped. It runs on the session's connection, inside its
transaction, and raises SQLAlchemy's exception types, so the runner tells an outage from a bad
message the same way on both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ClauseElement


def python_defaults(table: Table, given: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """Column → a maker of its Python-side default, for the columns not `given` (Core fills these
    in itself; SQL written or run without it must do it)."""
    makers = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None or not (default.is_scalar or default.is_callable):
            continue
        if default.is_scalar:
            makers[column.name] = lambda value=default.arg: value
        else:  # Core wraps a callable default to take the execution context
            makers[column.name] = lambda make=default.arg: make(None)
    return makers


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    positional: bool
    processors: dict[str, Callable[[Any], Any]]


class DirectStatement:
    """A Core statement compiled once per dialect and run on the DB-API cursor; see the module."""

    def __init__(self, statement: ClauseElement, defaults: dict[str, Callable[[], Any]] | None = None,
                 columns: list[str] | None = None):
        self.statement = statement
        self.defaults = defaults or {}
        self.columns = columns  # an INSERT's columns (SQLAlchemy's column_keys)
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str], returning: str | None = "id") -> "DirectStatement":
        """INSERT of `columns` (and the columns with Python-side defaults), RETURNING one column."""
        defaults = python_defaults(table, columns)
        statement = table.insert().returning(table.c[returning]) if returning else table.insert()
        return cls(statement, defaults, [*columns, *defaults])

    def rows(self, session: Session, params: dict[str, Any]) -> list[tuple]:
        """Run with `params`; the rows it returns (none for a statement without RETURNING)."""
        def execute(cursor, sql: str, values: list) -> list[tuple]:
            cursor.execute(sql, values[0])
            return cursor.fetchall() if cursor.description else []

        return self._run(session, [params], execute)

    def many(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """Run once for each of `rows` (executemany; no RETURNING)."""
        if rows:
            self._run(session, rows, lambda cursor, sql, values: cursor.executemany(sql, values))

    def _run(self, session: Session, rows: list[dict[str, Any]], call: Callable) -> Any:
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get((dialect.name, dialect.driver)) or self._compile(dialect)
        values = [self._values(compiled, params) for params in rows]
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        try:
            return call(cursor, compiled.sql, values)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                compiled.sql, values, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                connection_invalidated=dialect.is_disconnect(exc, dbapi_connection, cursor)) from exc
        finally:
            cursor.close()

    def _values(self, compiled: _Compiled, params: dict[str, Any]) -> tuple | dict:
        if self.defaults:
            params = {**{name: make() for name, make in self.defaults.items()}, **params}
        processors = compiled.processors
        if compiled.positional:
            return tuple(processors[n](params[n]) if n in processors else params[n] for n in compiled.names)
        return {n: processors[n](params[n]) if n in processors else params[n] for n in compiled.names}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        processors = {}
        for name in names:
            processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        result = _Compiled(compiled.string, names, compiled.positional, processors)
        self._compiled[(dialect.name, dialect.driver)] = result
        return result
