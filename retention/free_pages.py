"""Database pages that may still hold erased bytes after their rows are deleted: overwritten or freed.

SQLite: every connection runs with `secure_delete` on (`models.db`), so a deleted row's bytes are
zeroed in its page as it goes. The write-ahead log still holds older images of those pages (the
rows as they were written), so it is checkpointed into the database and truncated to zero bytes
(`wal_checkpoint(TRUNCATE)`, which waits for readers). An FTS5 index, when there is one, is
optimized first: merging its segments drops the deleted entries that it otherwise keeps.

PostgreSQL: a deleted row stays in its page until VACUUM reclaims it; the touched tables (and
their TOAST tables) are vacuumed. What stays until it ages out — the WAL segments and their
archive, and backups — is written in the README.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from sqlalchemy import text

from models.db import Database

# Every table an erasure deletes from or rewrites (message_search: the web view's search index, where
# there is one; a table that does not exist is skipped).
TOUCHED = (
    "messages",
    "raw_messages",
    "recipients",
    "attachments",
    "spam_verdicts",
    "imap_copies",
    "spam_labels",
    "spam_events",
    "tickets",
    "ticket_participants",
    "contacts",
    "sender_rules",
    "blobs",
    "message_search",
)


def free_pages(db: Database) -> dict[str, int]:
    """Run what this database needs after an erasure; what was done, as counts (0 when it could not)."""
    return _sqlite(db) if db.is_sqlite else _postgresql(db)


def _sqlite(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        # in autocommit: a checkpoint inside a transaction cannot truncate
        raw = cast(sqlite3.Connection, conn.connection.driver_connection)
        indexes = [
            name
            for (name,) in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'"
            )
        ]
        for name in indexes:
            raw.execute(f'INSERT INTO "{name}"("{name}") VALUES (\'optimize\')')
        busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return {"fts_optimized": len(indexes), "wal_truncated": int(not busy)}


def _postgresql(db: Database) -> dict[str, int]:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        existing = set(
            conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        )
        tables = [table for table in TOUCHED if table in existing]
        conn.exec_driver_sql("VACUUM " + ", ".join(tables))
    return {"vacuumed_tables": len(tables)}
