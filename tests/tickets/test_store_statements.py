"""The message store's statements (tickets/store/sql.py) on the DB-API cursor: the rows they write are
the rows SQLAlchemy's own execution writes, in the session's transaction, with SQLAlchemy's errors."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    case,
    literal,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from models.db import Database
from tickets.store.sql import Statement

WHEN = datetime(2026, 12, 7, 4, 30, 15, 123456, tzinfo=UTC)
_metadata = MetaData()
NOTES = Table(
    "statement_notes",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(40), nullable=False, unique=True),
    Column("kind", String(20), nullable=False, default="plain"),  # a scalar Python-side default
    Column("made_at", DateTime(timezone=True), nullable=False, default=lambda: WHEN),  # a callable one
    Column("extra", JSON),  # a type with a bind processor: Python objects to JSON text
)

ADD = Statement(NOTES.insert().returning(NOTES.c.id))
INSERT = Statement(NOTES.insert())  # for executemany: SQLite's driver counts no rows of one that returns some
RENAME = Statement(NOTES.update().where(NOTES.c.key == bindparam("old")).values(key=bindparam("new")))
DROP = Statement(NOTES.delete().where(NOTES.c.kind == bindparam("kind")))
KEYS_OF_KIND = Statement(select(NOTES.c.key).where(NOTES.c.kind == bindparam("kind")).order_by(NOTES.c.key).limit(1))
LABEL = Statement(
    select(case((NOTES.c.kind == "plain", literal("ordinary")), else_=literal("special"))).where(
        NOTES.c.key == bindparam("key")
    )
)
ADD_RAW = Statement(
    text("INSERT INTO statement_notes (key, kind, made_at) VALUES (:key, :kind, :made_at)").bindparams(
        bindparam("made_at", type_=DateTime(timezone=True))
    )
)


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    _metadata.create_all(database.engine)
    yield database
    database.dispose()


def rows(db: Database) -> list[tuple]:
    with db.read() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(NOTES.c.key, NOTES.c.kind, NOTES.c.made_at, NOTES.c.extra).order_by(NOTES.c.key)
            )
        ]


def test_an_insert_writes_the_row_sqlalchemy_writes_with_its_python_defaults_and_types(db):
    with db.write() as session:
        session.execute(NOTES.insert(), {"key": "core", "extra": {"n": [1, 2]}})
    with db.write() as session:
        (new_id,) = ADD.one(session, {"key": "direct", "extra": {"n": [1, 2]}})
    core, direct = rows(db)
    assert direct[1:] == core[1:] and direct[1] == "plain" and direct[3] == {"n": [1, 2]}
    assert direct[2].replace(tzinfo=UTC) == WHEN
    with db.read() as session:
        assert session.scalar(select(NOTES.c.key).where(NOTES.c.id == new_id)) == "direct"


def test_the_same_statement_with_other_parameters_given_is_compiled_for_them(db):
    with db.write() as session:
        ADD.one(session, {"key": "a"})
        ADD.one(session, {"key": "b", "kind": "odd", "made_at": WHEN.replace(year=2020), "extra": None})
    (_, a_kind, _, a_extra), (_, b_kind, b_made, b_extra) = rows(db)
    assert (a_kind, a_extra, b_kind, b_extra) == ("plain", None, "odd", None)
    assert b_made.year == 2020


def test_run_and_many_count_the_rows_they_change(db):
    with db.write() as session:
        assert INSERT.many(session, [{"key": f"k{n}", "kind": "odd" if n % 2 else "even"} for n in range(5)]) == 5
        assert INSERT.many(session, []) == 0
        assert RENAME.run(session, {"old": "k0", "new": "first"}) == 1
        assert RENAME.run(session, {"old": "nobody", "new": "x"}) == 0
        assert DROP.run(session, {"kind": "odd"}) == 2
    assert [key for key, *_ in rows(db)] == ["first", "k2", "k4"]


def test_reads_return_the_driver_rows_with_the_statements_own_literals(db):
    with db.write() as session:
        INSERT.many(
            session, [{"key": "b", "kind": "plain"}, {"key": "a", "kind": "plain"}, {"key": "c", "kind": "odd"}]
        )
    with db.read() as session:
        assert KEYS_OF_KIND.one(session, {"kind": "plain"}) == ("a",)  # its LIMIT 1, written into the statement
        assert KEYS_OF_KIND.one(session, {"kind": "none"}) is None
        assert LABEL.one(session, {"key": "a"}) == ("ordinary",) and LABEL.one(session, {"key": "c"}) == ("special",)


def test_a_text_statement_binds_its_typed_parameters(db):
    with db.write() as session:
        ADD_RAW.run(session, {"key": "raw", "kind": "plain", "made_at": WHEN})
    ((_, _, made_at, _),) = rows(db)
    assert made_at.replace(tzinfo=UTC) == WHEN


def test_it_runs_in_the_sessions_transaction_and_a_rollback_undoes_it(db):
    with pytest.raises(RuntimeError), db.write() as session:
        ADD.one(session, {"key": "gone"})
        assert session.scalar(select(NOTES.c.key)) == "gone"  # the session sees its own write
        raise RuntimeError("the batch fails")
    assert rows(db) == []


def test_a_driver_error_is_sqlalchemys_so_the_runner_tells_a_bad_row_from_an_outage(db):
    with db.write() as session:
        ADD.one(session, {"key": "twice"})
    with pytest.raises(IntegrityError), db.write() as session:
        ADD.one(session, {"key": "twice"})
    with pytest.raises(IntegrityError), db.write() as session:
        INSERT.many(session, [{"key": "once"}, {"key": "once"}])
    assert [key for key, *_ in rows(db)] == ["twice"]
