"""Engines, sessions and migrations, the same code for SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout; write transactions start with BEGIN IMMEDIATE
(`Database.write()`) so two writers queue for the lock instead of failing halfway through.
The write-ahead log is kept small (`Database.bound_wal`, called by the runner after each batch).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import cast
from collections.abc import Iterable, Iterator

from sqlalchemy import ColumnElement, Select, bindparam, create_engine, event, select, text
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("postdesk.db")

MIGRATIONS = Path(__file__).parent / "migrations"
# Past this size the write-ahead log is checkpointed into the database and truncated. SQLite's
# automatic checkpoints (every 1,000 pages) cannot start the log over while readers overlap all
# the time, and it then grows for as long as they do (bench/results/wal.md).
WAL_LIMIT = 16 * 1024 * 1024


def _sqlite_pragmas(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL, not NORMAL: in WAL mode NORMAL does not fsync at commit, so a power cut could undo
        # a commit after the runner removed its spool entries. A batch's messages share the extra fsync.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")  # the log shrinks back when it starts over
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    # hide_parameters: a database error's text (logged by the runner) never shows the values, which
    # are mail: addresses, subjects, bodies.
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, hide_parameters=True
        )
        _sqlite_pragmas(engine, busy_timeout)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


@contextmanager
def _foreign_keys_off(conn) -> Iterator[None]:
    """SQLite: a migration that rebuilds a table (Alembic's batch mode) drops the old one, which with
    foreign keys on would run their ON DELETE actions (emptying the tables that cascade). The pragma
    works only outside a transaction; the keys are checked at the end of the migration instead."""
    raw = conn.connection.driver_connection
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys = ON")


def affected(result: Result) -> int:
    """How many rows an UPDATE or DELETE changed (SQLAlchemy types `execute` as any result)."""
    return cast(CursorResult, result).rowcount


def count(session: Session, statement: Select) -> int:
    """The number a `SELECT count(...)` returns."""
    return session.scalar(statement) or 0


def stored_values(session: Session, column: ColumnElement, values: Iterable[str]) -> set[str]:
    """Those of `values` that `column` holds, in queries of 500 (well under SQLite's bound-parameter
    limit). A table's column (`table(Model).c.name`) makes it a Core query, without the ORM's work
    around the call."""
    found: set[str] = set()
    values, statement = sorted(set(values)), _lookup(column)
    for i in range(0, len(values), 500):
        found.update(session.scalars(statement, {"values": values[i : i + 500]}))
    return found


@cache
def _lookup(column: ColumnElement) -> Select:
    return select(column).where(column.in_(bindparam("values", expanding=True)))


class Database:
    """One engine and its session factories: `read()` for queries, `write()` for short write transactions."""

    def __init__(self, url: str, busy_timeout: float = 30.0):
        self.url = url
        self.engine = make_engine(url, busy_timeout)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        database = self.engine.url.database
        self._wal = f"{database}-wal" if self.is_sqlite and database and database != ":memory:" else None
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def bound_wal(self) -> bool:
        """SQLite: once the write-ahead log is over `WAL_LIMIT`, copy it into the database and
        truncate it, waiting (up to the busy timeout) for the readers that still use it; True when
        it was truncated. Nothing to do for PostgreSQL, or while the log is small (one stat)."""
        try:
            if self._wal is None or os.stat(self._wal).st_size <= WAL_LIMIT:
                return False
        except FileNotFoundError:
            return False
        connection = self.engine.raw_connection()  # autocommit (see _sqlite_pragmas): no BEGIN around it
        try:
            busy, _, _ = connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except self.engine.dialect.loaded_dbapi.Error as exc:  # a full disk, say: the next commit reports it
            log.warning("checkpoint of the write-ahead log failed (%s)", exc)
            return False
        finally:
            connection.close()
        return not busy

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command  # Alembic takes a third of a second to import; only migrating needs it
        from alembic.config import Config

        with self.engine.connect() as conn, _foreign_keys_off(conn) if self.is_sqlite else nullcontext(), conn.begin():
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if self.is_sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the migration broke {len(broken)} foreign keys, e.g. {broken[0]}")

    def schema_is_current(self) -> bool:
        """Whether the schema is at the newest revision; False too while the database does not answer."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
        try:
            with self.engine.connect() as conn:
                return set(MigrationContext.configure(conn).get_current_heads()) == heads
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
