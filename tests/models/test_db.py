"""The database layer: SQLite's write-ahead log stays bounded however readers overlap."""

from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import text

from conftest import PG_URL
from models import db as db_module
from models.db import Database

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's write-ahead log")


def test_a_write_ahead_log_grown_past_its_limit_is_checkpointed_and_truncated_once_readers_let_go(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(db_module, "WAL_LIMIT", 1 << 20)
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}", busy_timeout=0.1)
    with db.write() as session:
        session.execute(text("CREATE TABLE t (x BLOB)"))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot held open: the log cannot start over
    for _ in range(40):
        with db.write() as session:
            session.execute(text("INSERT INTO t VALUES (:x)"), {"x": os.urandom(64 * 1024)})
    wal = tmp_path / "wal.db-wal"
    assert wal.stat().st_size > db_module.WAL_LIMIT
    assert not db.bound_wal()  # the reader still needs the log: it waits its busy timeout, then leaves it
    reader.execute("COMMIT")
    reader.close()
    assert db.bound_wal() and wal.stat().st_size == 0
    with db.read() as session:
        assert session.scalar(text("SELECT count(*) FROM t")) == 40
    assert not db.bound_wal()  # small now: nothing to do
    db.dispose()
