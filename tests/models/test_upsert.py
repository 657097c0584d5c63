"""`insert_ignore`: rows that conflict with a stored one are skipped, the others written, on both databases."""

from __future__ import annotations

from datetime import datetime, UTC

from sqlalchemy import select

from models import Department, SenderRule
from models.db import Database
from models.upsert import insert_ignore

WHEN = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)


def test_conflicting_rows_are_skipped_and_the_rest_written_with_their_types(database_url):
    db = Database(database_url)
    db.migrate()
    try:
        with db.write() as session:
            insert_ignore(session, Department, [{"name": "Support"}])
            insert_ignore(session, Department, [{"name": "Support"}, {"name": "Billing"}, {"name": "Billing"}])
            insert_ignore(session, Department, [])
            insert_ignore(session, SenderRule, [{"pattern": "@spam.example", "action": "block", "created_at": WHEN}])
            insert_ignore(session, SenderRule, [{"pattern": "@spam.example", "action": "allow", "created_at": WHEN}])
        with db.read() as session:
            assert sorted(session.scalars(select(Department.name))) == ["Billing", "Support"]
            rule = session.scalars(select(SenderRule)).one()
        assert (rule.pattern, rule.action) == ("@spam.example", "block")
        assert rule.created_at.replace(tzinfo=UTC) == WHEN
    finally:
        db.dispose()
