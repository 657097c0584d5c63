"""Which steps of a statement's plan read a whole table: the check behind "by indexed lookups only"."""

from __future__ import annotations

import re

# a handful of rows: reading them all is fine (legal holds: a few per legal case)
SMALL_TABLES = ("spam_model_versions", "sqlite_master", "pg_tables", "legal_holds")


def full_scans(conn, sql: str, params) -> list[str]:
    """The plan's steps that read a whole table. SQLite: SCAN, except a constant row, a subquery's
    rows (its own steps are in the plan too) and a virtual table's own index used with a
    constraint (FTS5's rowid lookup, "INDEX 0:="). PostgreSQL, told to avoid them: Seq Scan."""
    if conn.dialect.name == "sqlite":
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
        steps = [
            step
            for step in plan
            if re.match(r"SCAN (?!CONSTANT ROW|\(subquery)", step)
            and not re.search(r"VIRTUAL TABLE INDEX \d+:\S", step)
        ]
    else:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params)]
        steps = [step for step in plan if "Seq Scan" in step]
    return [step for step in steps if not any(table in step for table in SMALL_TABLES)]
