"""The queues: which tickets each shows to whom, sorted, in keyset pages, with capped counts."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from models import Agent, Department, Ticket
from models.db import Database
from tickets import queues
from tickets.queues import Filters, Scope

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url):
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def world(db):
    """Two departments, an agent, and tickets in every queue."""
    with db.write() as s:
        support, billing = Department(name="Support"), Department(name="Billing")
        agent = Agent(email="ann@example.com", name="Ann", password_hash="x")
        s.add_all([support, billing, agent])
        s.flush()
        made = {}
        for n, (queue, status, dept, mine) in enumerate(
            [
                ("inbox", "new", support, False),
                ("inbox", "open", support, True),
                ("inbox", "pending", support, True),
                ("inbox", "closed", support, False),
                ("inbox", "resolved", billing, False),
                ("review", "new", support, False),
                ("spam", "new", billing, False),
                ("automatic", "new", support, False),
                ("trash", "open", support, False),
                ("inbox", "new", billing, False),
            ]
        ):
            t = Ticket(
                subject=f"{queue}/{status}/{dept.name}",
                queue=queue,
                status=status,
                department_id=dept.id,
                assignee_id=agent.id if mine else None,
                created_at=T0 + timedelta(minutes=n),
                updated_at=T0 + timedelta(minutes=n),
            )
            s.add(t)
            made[t.subject] = t
        s.flush()
        return {
            "support": support.id,
            "billing": billing.id,
            "agent": agent.id,
            "tickets": {k: v.id for k, v in made.items()},
        }


def subjects(db, key, scope, filters=None, **kw):
    filters = filters or Filters()
    with db.read() as s:
        return [r["subject"] for r in queues.page(s, key, scope, filters, **kw).rows]


def test_each_queue_holds_its_tickets_and_an_agent_sees_only_their_departments(db, world):
    everyone = Scope(world["agent"], None)
    support_only = Scope(world["agent"], frozenset({world["support"]}))
    assert subjects(db, "open", everyone) == ["inbox/new/Billing", "inbox/open/Support", "inbox/new/Support"]
    assert subjects(db, "open", support_only) == ["inbox/open/Support", "inbox/new/Support"]
    assert subjects(db, "pending", everyone) == ["inbox/pending/Support"]
    assert subjects(db, "mine", everyone) == ["inbox/pending/Support", "inbox/open/Support"]
    assert subjects(db, "review", everyone) == ["review/new/Support"]
    assert subjects(db, "spam", support_only) == []
    assert subjects(db, "automatic", everyone) == ["automatic/new/Support"]
    assert subjects(db, "closed", everyone) == ["inbox/resolved/Billing", "inbox/closed/Support"]
    assert subjects(db, "trash", everyone) == ["trash/open/Support"]
    assert subjects(db, "open", Scope(world["agent"], frozenset())) == []


def test_filters_narrow_by_department_status_and_assignee_but_never_past_the_scope(db, world):
    everyone = Scope(world["agent"], None)
    support_only = Scope(world["agent"], frozenset({world["support"]}))
    assert subjects(db, "open", everyone, Filters(department=world["billing"])) == ["inbox/new/Billing"]
    assert subjects(db, "open", support_only, Filters(department=world["billing"])) == []
    assert subjects(db, "open", everyone, Filters(status="open")) == ["inbox/open/Support"]
    assert subjects(db, "open", everyone, Filters(assignee="none")) == ["inbox/new/Billing", "inbox/new/Support"]
    assert subjects(db, "open", everyone, Filters(assignee="me")) == ["inbox/open/Support"]
    assert subjects(db, "open", everyone, Filters(assignee=str(world["agent"]))) == ["inbox/open/Support"]


def test_sorting_by_last_activity_or_creation_either_way(db, world):
    everyone = Scope(world["agent"], None)
    with db.write() as s:  # the oldest ticket gets a reply now
        s.get(Ticket, world["tickets"]["inbox/new/Support"]).updated_at = T0 + timedelta(hours=1)
    assert subjects(db, "open", everyone) == ["inbox/new/Support", "inbox/new/Billing", "inbox/open/Support"]
    assert subjects(db, "open", everyone, Filters(descending=False)) == [
        "inbox/open/Support",
        "inbox/new/Billing",
        "inbox/new/Support",
    ]
    assert subjects(db, "open", everyone, Filters(sort="created")) == [
        "inbox/new/Billing",
        "inbox/open/Support",
        "inbox/new/Support",
    ]
    assert subjects(db, "open", everyone, Filters(sort="created", descending=False)) == [
        "inbox/new/Support",
        "inbox/open/Support",
        "inbox/new/Billing",
    ]


@pytest.mark.parametrize("sort", queues.SORTS)
def test_keyset_pages_walk_forward_and_back_without_gaps_or_repeats(db, sort):
    with db.write() as s:
        dept = Department(name="Support")
        s.add(dept)
        s.flush()
        for n in range(23):  # ties in updated_at: the id breaks them
            s.add(
                Ticket(
                    subject=f"t{n:02}",
                    queue="inbox",
                    status=("new", "open")[n % 2],
                    department_id=dept.id,
                    updated_at=T0 + timedelta(minutes=n // 3),
                )
            )
        dept_id = dept.id
    scope, filters = Scope(1, frozenset({dept_id})), Filters(sort=sort)
    pages, cursor = [], None
    with db.read() as s:
        while True:
            p = queues.page(s, "open", scope, filters, cursor=cursor, limit=5)
            pages.append(p)
            if p.next_cursor is None:
                break
            cursor = p.next_cursor
        seen = [r["subject"] for p in pages for r in p.rows]
        assert seen == [f"t{n:02}" for n in reversed(range(23))] and len(pages) == 5
        assert pages[0].previous_cursor is None
        back = queues.page(s, "open", scope, filters, before=pages[2].previous_cursor, limit=5)
        assert [r["subject"] for r in back.rows] == [r["subject"] for r in pages[1].rows]
        assert back.next_cursor is not None and back.previous_cursor is not None
        first = queues.page(s, "open", scope, filters, before=pages[1].previous_cursor, limit=5)
        assert [r["subject"] for r in first.rows] == [r["subject"] for r in pages[0].rows]
        assert first.previous_cursor is None


def test_counts_per_queue_respect_the_scope_and_stop_at_the_cap(db, world, monkeypatch):
    with db.read() as s:
        assert queues.counts(s, Scope(world["agent"], None)) == {
            "open": 3,
            "pending": 1,
            "mine": 2,
            "review": 1,
            "spam": 1,
            "automatic": 1,
            "closed": 2,
            "trash": 1,
        }
        assert queues.counts(s, Scope(world["agent"], frozenset({world["billing"]})))["open"] == 1
        monkeypatch.setattr(queues, "COUNT_CAP", 1)
        assert queues.counts(s, Scope(world["agent"], None))["open"] == 2  # shown as "1+"


def test_a_garbled_cursor_starts_from_the_top(db, world):
    assert subjects(db, "closed", Scope(world["agent"], None), cursor="garbage~x") == [
        "inbox/resolved/Billing",
        "inbox/closed/Support",
    ]
