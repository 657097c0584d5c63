"""Erasure as a property: any sequence of messages written, then any subset erased, leaves the
database and the blob folder equal to the store before with exactly the erased rows deleted.

Hypothesis writes conversations through the real spool, runner and pipeline: senders and Cc from a
small pool (one of them on the block list, so its new mail is spam that makes no contact), replies
threading onto earlier messages, attachments from a small pool (shared between messages, twice in
one), some fetched over IMAP, some learned as spam or ham by an agent. Then it erases a subset,
and the store must equal the one before, minus:
- the erased messages and every row hanging on them, their full-text index rows, and their spam
  labels (the live model then equals one rebuilt from the labels left);
- tickets left without a message (a ticket linked to one loses the link); a surviving ticket's
  subject when it was its erased opener's (the oldest message left gives it);
- participants an erased message named and no message left on the ticket names;
- contacts of erased messages and tickets that no message or ticket left points at;
- blobs no attachment left counts, rows and files; the others counted exactly.
Every survivor keeps its ticket, its thread and its files, and no blob file is orphaned or missing.
After each example the rest is erased too, and nothing of it may remain.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import namedtuple
from email.message import EmailMessage

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select, text

from classifier.versions import model_from_ledger
from models import (
    Attachment,
    Blob,
    Contact,
    ImapCopy,
    Message,
    RawMessage,
    Recipient,
    SpamLabel,
    SpamVerdict,
    Ticket,
    TicketParticipant,
)
from models.mail.envelope import Envelope
from postdesk.app import App
from tickets.spam_marks import mark_message

SENDERS = ["alice@example.org", "bob@example.org", "carol@example.net", "spammer@deals.example"]
FILES = [b"%PDF-1.4 invoice", b"%PDF-1.4 photo of the printer", b"GIF89a a small picture"]
TABLES = (
    Message,
    RawMessage,
    Recipient,
    Attachment,
    SpamVerdict,
    ImapCopy,
    SpamLabel,
    Ticket,
    TicketParticipant,
    Contact,
    Blob,
)
_runs = itertools.count()


@pytest.fixture
def desk(settings):
    app = App.open(settings.model_copy(update={"spam_block": ["spammer@deals.example"]}))
    runner = app.runner()
    yield app, runner
    app.db.dispose()


message_plans = st.lists(
    st.fixed_dictionaries(
        {
            "sender": st.sampled_from(SENDERS),
            "cc": st.none() | st.sampled_from(SENDERS),
            "reply_to": st.none() | st.integers(0, 20),  # an earlier message of the conversation, by index
            "files": st.lists(st.sampled_from(FILES), max_size=3),
            "imap": st.booleans(),
            "label": st.sampled_from([None, None, "spam", "ham"]),
            "erase": st.booleans(),
        }
    ),
    min_size=1,
    max_size=8,
)


@hsettings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=message_plans)
def test_erasing_any_subset_deletes_exactly_its_rows_and_files(desk, plans):
    app, runner = desk
    prefix = f"p{next(_runs)}x{time.time_ns()}"
    ids = write(app, runner, prefix, plans)
    before = snapshot(app)
    erased = [i for i, plan in zip(ids, plans, strict=True) if plan["erase"]]

    with app.db.write() as session:
        app.store.erase(session, erased)

    assert snapshot(app) == expected_after(before, set(erased))
    assert live_model_equals_ledger(app)
    with app.db.write() as session:  # the rest, so the next example starts from nothing
        app.store.erase(session, [i for i in ids if i not in erased])
    assert snapshot(app) == {"files": {}, "message_search": set(), **{model.__tablename__: set() for model in TABLES}}


def write(app: App, runner, prefix: str, plans: list[dict]) -> list[int]:
    message_ids = []
    for n, plan in enumerate(plans):
        msg = EmailMessage()
        message_ids.append(f"{prefix}.{n}@example.org")
        msg["From"], msg["To"], msg["Subject"] = plan["sender"], "support@example.com", f"Case {prefix} {n}"
        msg["Message-ID"] = f"<{message_ids[-1]}>"
        if plan["cc"]:
            msg["Cc"] = plan["cc"]
        if plan["reply_to"] is not None and n:
            msg["In-Reply-To"] = f"<{message_ids[plan['reply_to'] % n]}>"
        msg.set_content(f"Message {n} of {prefix}.")
        for k, data in enumerate(plan["files"]):
            msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=f"file{k}")
        imap = {"account": "helpdesk", "folder": "INBOX", "uidvalidity": 7, "uid": n + 1} if plan["imap"] else None
        app.spool.put(
            msg.as_bytes().replace(b"\n", b"\r\n"),
            Envelope(mail_from=plan["sender"], rcpt_tos=["support@example.com"], imap=imap),
        )
    runner.drain()
    with app.db.read() as session:
        by_header = dict(
            session.execute(
                select(Message.message_id_header, Message.id).where(Message.message_id_header.in_(message_ids))
            ).all()
        )
    ids = [by_header[m] for m in message_ids]
    spam_filter = app.live_model().filter
    with app.db.write() as session:
        for message_id, plan in zip(ids, plans, strict=True):
            if plan["label"]:
                mark_message(
                    session, message_id, plan["label"], store=app.store, spam_filter=spam_filter, actor="agent"
                )
    return ids


def snapshot(app: App) -> dict:
    """Every row of every table holding a copy of a message, and every blob file with its content's hash."""
    with app.db.read() as session:
        tables = {model.__tablename__: rows(session, model.__table__) for model in TABLES}
        key = "rowid" if session.get_bind().dialect.name == "sqlite" else "message_id"
        indexed = set(session.scalars(text(f"SELECT {key} FROM message_search")))  # the full-text index
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in app.blobs.root.glob("??/*")}
    return {"files": files, "message_search": indexed, **tables}


def rows(session, table) -> set:
    """A table's rows as named tuples, JSON values as text (so they hash)."""
    row = namedtuple(table.name, table.columns.keys())
    return {
        row(*(json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v for v in values))
        for values in session.execute(select(table)).all()
    }


def expected_after(before: dict, erased: set[int]) -> dict:
    """The snapshot `before` with the rows an erasure of `erased` must delete, deleted (see the module)."""
    messages = {m.id: m for m in before["messages"]}
    left = {i: m for i, m in messages.items() if i not in erased}
    named: dict[int, set[tuple[int, str]]] = {}  # message → (ticket, address) it names: From, To, Cc
    for m in messages.values():
        named[m.id] = {(m.ticket_id, m.from_address)} if m.ticket_id and m.from_address else set()
    for r in before["recipients"]:
        if r.kind in ("to", "cc") and messages[r.message_id].ticket_id:
            named[r.message_id].add((messages[r.message_id].ticket_id, r.address))
    still_named = set().union(*(named[i] for i in left))
    gone_named = set().union(*(named[i] for i in erased)) - still_named
    tickets_left = {m.ticket_id for m in left.values()}
    tickets = set()
    for t in before["tickets"]:
        if t.id not in tickets_left:
            continue
        opener = next((m for m in messages.values() if m.ticket_id == t.id and m.thread_rule == "new"), None)
        if opener is not None and opener.id in erased and t.subject == opener.subject[:1000]:
            oldest = min((m for m in left.values() if m.ticket_id == t.id), key=lambda m: m.id)
            t = t._replace(subject=oldest.subject[:1000])
        if t.linked_ticket_id is not None and t.linked_ticket_id not in tickets_left:
            t = t._replace(linked_ticket_id=None)
        tickets.add(t)
    contacts_used = {m.contact_id for m in left.values()} | {t.contact_id for t in tickets}
    contacts_of_erased = {messages[i].contact_id for i in erased} | {
        t.contact_id for t in before["tickets"] if t.id not in tickets_left
    }
    attachments = {a for a in before["attachments"] if a.message_id not in erased}
    counts = {
        blob_id: sum(1 for a in attachments if a.blob_id == blob_id) for blob_id in {a.blob_id for a in attachments}
    }
    blobs = {b._replace(refcount=counts[b.id]) for b in before["blobs"] if b.id in counts}
    return {
        "files": {sha: content for sha, content in before["files"].items() if sha in {b.sha256 for b in blobs}},
        "message_search": before["message_search"] - erased,
        "messages": set(left.values()),
        **{
            name: {row for row in before[name] if row.message_id not in erased}
            for name in ("raw_messages", "recipients", "spam_verdicts", "imap_copies", "spam_labels")
        },
        "attachments": attachments,
        "tickets": tickets,
        "ticket_participants": {
            p
            for p in before["ticket_participants"]
            if p.ticket_id in tickets_left and (p.ticket_id, p.address) not in gone_named
        },
        "contacts": {c for c in before["contacts"] if c.id in contacts_used or c.id not in contacts_of_erased},
        "blobs": blobs,
    }


def live_model_equals_ledger(app: App) -> bool:
    """The model every process scores with (events replayed) equals the one rebuilt from the labels left."""
    live = app.live_model()
    with app.db.read() as session:
        live.refresh(session)
        rebuilt, _ = model_from_ledger(session, live.filter.model.n_features)
    model = live.filter.model
    return (
        np.array_equal(model.spam_counts, rebuilt.spam_counts)
        and np.array_equal(model.ham_counts, rebuilt.ham_counts)
        and (model.n_spam, model.n_ham) == (rebuilt.n_spam, rebuilt.n_ham)
    )
