"""The database half of a backup: a consistent snapshot out, and back into an empty database.

SQLite: the online backup API (`sqlite3.Connection.backup`) in one step, so the copy is the
database as one read transaction saw it, while `serve` goes on writing (WAL mode: the reader
blocks nobody). The copy is switched to a rollback journal, a single self-contained file.

PostgreSQL: `pg_dump` in its custom format, reading a snapshot this module exports from a
REPEATABLE READ transaction (`pg_export_snapshot`); the blob files and spam model files the backup
needs are listed in that same transaction, so they describe the very state the dump holds.
`pg_restore` brings it back in one transaction (a failure leaves the database as it was).

Both hand back `Needs`: the blob sha256s and spam model snapshot names the database refers to.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection, Engine

SQLITE_FILE = "database.sqlite3"
PG_DUMP_FILE = "database.pgdump"
_BLOBS = "SELECT sha256 FROM blobs"
_SPAM = "SELECT path FROM spam_model_versions"
_MAJOR = re.compile(r"\)\s+(\d+)")  # "pg_dump (PostgreSQL) 15.20 (Debian ...)"


class DatabaseCopyError(Exception):
    """The database could not be copied out or back; the message says why, for people."""


@dataclass(frozen=True)
class Needs:
    """What the database snapshot refers to outside itself."""

    blobs: frozenset[str]
    spam_stems: frozenset[str]


# --- SQLite ----------------------------------------------------------------------------------------


def sqlite_snapshot(database: Path, out: Path, busy_timeout: float) -> Needs:
    """Copy the live SQLite database at `database` to `out`, consistently, in one step."""
    # closing(), not the connections' own `with` (that only ends a transaction): closed also when
    # the second connect fails (no room or no permission for `out`).
    with (
        closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=busy_timeout)) as source,
        closing(sqlite3.connect(out)) as copy,
    ):
        # Pages read through a memory map instead of a pread each, and the copy not fsynced (the
        # backup's one syncfs does that): 163 MB in 1.4 s instead of 2.2-2.7 s (bench/privacy.py).
        source.execute(f"PRAGMA mmap_size = {1 << 31}")
        copy.execute("PRAGMA synchronous = OFF")
        source.backup(copy)  # pages=-1: every page in one step, under one read transaction
        copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
        return _needs(copy.execute)


def _needs(execute: Callable) -> Needs:
    return Needs(frozenset(row[0] for row in execute(_BLOBS)), frozenset(row[0] for row in execute(_SPAM)))


# --- PostgreSQL ------------------------------------------------------------------------------------


def pg_snapshot(engine: Engine, out: Path) -> Needs:
    """`pg_dump` of the database `engine` names into `out`, from a snapshot the needs are read in too."""
    pg_dump = _tool("pg_dump")
    with engine.connect() as conn:
        _check_versions(conn, pg_dump)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            needs = _needs(lambda sql: conn.execute(text(sql)))
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={out}",
                ],
                engine,
            )
    return needs


def pg_restore(engine: Engine, dump: Path) -> None:
    """Load `dump` into the (empty) database `engine` names, in one transaction."""
    _run(
        [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(dump)],
        engine,
        database_option="--dbname",
    )


def pg_is_empty(engine: Engine) -> bool:
    """No table, view, sequence or function in the current schema (what a restore would create)."""
    with engine.connect() as conn:
        return not conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = current_schema()::regnamespace) "
                "OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = current_schema()::regnamespace)"
            )
        ).scalar_one()


def pg_empty_again(engine: Engine) -> None:
    """Drop what a failed restore created in the current schema (it was empty before: `pg_is_empty`)."""
    with engine.connect() as conn, conn.begin():
        for (table,) in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
        for (signature,) in conn.execute(
            text("SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")
        ):
            conn.execute(text(f"DROP FUNCTION IF EXISTS {signature} CASCADE"))
        for (sequence,) in conn.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
        ):
            conn.execute(text(f'DROP SEQUENCE IF EXISTS "{sequence}" CASCADE'))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DatabaseCopyError(
            f"{name} is not installed: install PostgreSQL's client tools (Debian: apt-get install postgresql-client)"
        )
    return found


def _check_versions(conn: Connection, pg_dump: str) -> None:
    """pg_dump refuses a server of a newer major version: say which client to install instead."""
    server = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    shown = subprocess.run([pg_dump, "--version"], capture_output=True, text=True).stdout
    match = _MAJOR.search(shown)
    if match and int(match.group(1)) < server:
        raise DatabaseCopyError(
            f"pg_dump {match.group(1)} cannot dump a PostgreSQL {server} server: install "
            f"postgresql-client-{server} (Debian, from apt.postgresql.org) and put it first on PATH"
        )


def _run(command: list[str], engine: Engine, database_option: str = "--dbname") -> None:
    """Run a client tool on the database `engine` names; the password goes in the environment, not argv."""
    with _libpq(engine) as (url, env):
        done = subprocess.run(command + [f"{database_option}={url}"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise DatabaseCopyError(f"{Path(command[0]).name} failed: {lines[-1] if len(lines) == 1 else lines[0]}")


@contextmanager
def _libpq(engine: Engine) -> Iterator[tuple[str, dict[str, str]]]:
    url = make_url(engine.url.render_as_string(hide_password=False))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    yield url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env
