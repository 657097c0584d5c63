"""The message store's one write mechanism: every write of the store is a `Statement`.

A `Statement` is a SQLAlchemy Core statement, compiled once per dialect and set of parameters by
SQLAlchemy (quoting, paramstyle, the column types' bind processors for datetimes and JSON, an
INSERT's Python-side column defaults) and run on the DB-API cursor of the session's connection,
inside its transaction. What it skips is SQLAlchemy's work around each call (cache key, execution
context, result object), which the runner pays about five times a message (bench/results/store.md). So:
- statements are module constants whose parameters are `bindparam`s (no IN lists, which SQLAlchemy
  expands at each call: a list of values is an executemany of one row each);
- rows come back as the driver gives them: a statement here returns only ids and strings;
- driver errors are raised as SQLAlchemy's, so the runner tells an outage from a bad message as
  on any other path.
Reads that are not part of a write (threading, the lookups of an erasure) use the session as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnDefault, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional paramstyle takes them
    positional: bool
    processors: dict[str, Callable[[Any], Any]]
    defaults: dict[str, Callable[[], Any]]  # an INSERT's Python-side defaults for the columns not given
    literals: dict[str, Any]  # values written into the statement (a LIMIT, a CASE's strings)


class Statement:
    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[tuple, _Compiled] = {}  # by dialect and the parameters given

    def one(self, session: Session, params: dict[str, Any]) -> tuple | None:
        """The first row it returns (RETURNING, or a lookup), or None."""

        def execute(cursor, sql, values):
            cursor.execute(sql, values[0])
            return cursor.fetchone() if cursor.description else None

        return self._run(session, [params], execute)

    def returned(self, session: Session, params: dict[str, Any]) -> tuple:
        """The row an INSERT ... RETURNING made."""
        row = self.one(session, params)
        if row is None:
            raise RuntimeError("an INSERT ... RETURNING returned no row")
        return row

    def run(self, session: Session, params: dict[str, Any]) -> int:
        """Run it; how many rows it changed."""

        def execute(cursor, sql, values):
            cursor.execute(sql, values[0])
            return cursor.rowcount

        return self._run(session, [params], execute)

    def many(self, session: Session, rows: list[dict[str, Any]]) -> int:
        """Run it once per row (all with the same keys), as one executemany; how many rows it changed."""

        def execute(cursor, sql, values):
            cursor.executemany(sql, values)
            return cursor.rowcount

        return self._run(session, rows, execute) if rows else 0

    def _run(self, session: Session, rows: list[dict[str, Any]], call: Callable) -> Any:
        connection = session.connection()
        dialect = connection.dialect
        given = tuple(rows[0])
        compiled = self._compiled.get((dialect.name, dialect.driver, given)) or self._compile(dialect, given)
        values = [_values(compiled, params) for params in rows]
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        try:
            return call(cursor, compiled.sql, values)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                compiled.sql,
                values,
                exc,
                dialect.loaded_dbapi.Error,
                dialect=dialect,
                connection_invalidated=dialect.is_disconnect(exc, dbapi_connection, cursor),
            ) from exc
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect, given: tuple[str, ...]) -> _Compiled:
        defaults = _insert_defaults(self.statement, given)
        columns = [*given, *defaults] if defaults is not None else None  # an INSERT's, as Core's column_keys
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=columns))
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in names:
            processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        literals = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        result = _Compiled(compiled.string, names, compiled.positional, processors, defaults or {}, literals)
        self._compiled[(dialect.name, dialect.driver, given)] = result
        return result


def _values(compiled: _Compiled, params: dict[str, Any]) -> tuple | dict:
    if compiled.defaults or compiled.literals:
        params = {**compiled.literals, **{name: make() for name, make in compiled.defaults.items()}, **params}
    processors = compiled.processors
    if compiled.positional:
        return tuple(processors[n](params[n]) if n in processors else params[n] for n in compiled.names)
    return {n: processors[n](params[n]) if n in processors else params[n] for n in compiled.names}


def _insert_defaults(statement: ClauseElement, given: tuple[str, ...]) -> dict[str, Callable[[], Any]] | None:
    """For a Core INSERT of a table: the Python-side defaults of the columns not `given` (Core fills
    these in as it executes, which this path skips); None for any other statement."""
    table = getattr(statement, "table", None)
    if not getattr(statement, "is_insert", False) or not isinstance(table, Table):
        return None
    makers: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or not isinstance(default, ColumnDefault):
            continue
        if not (default.is_scalar or default.is_callable):  # a SQL expression: the database computes it
            continue
        if default.is_scalar:
            makers[column.name] = partial(_constant, default.arg)
        else:  # Core wraps a callable default to take the execution context
            makers[column.name] = partial(default.arg, None)
    return makers


def _constant(value: Any) -> Any:
    return value
