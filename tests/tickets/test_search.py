"""The full-text index: mail arriving over SMTP is found by its words, only in the departments
asked for, and a removed message leaves neither search results nor bytes in the database file."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import delete, select, text

from models import Message, Ticket
from models.db import Database
from serve import settings_env
from tickets import search


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "Greta Gruber <greta@example.org>",
    to: str = "support@example.com",
    attachment: str | None = None,
    html: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment:
        msg.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename=attachment)
    return msg.as_bytes()


def html_only(subject: str, html: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "web@example.org", "support@example.com", subject
    msg.set_content(html, subtype="html")
    return msg.as_bytes()


def found(db: Database, query: str, departments=None, **kw) -> list[search.Hit]:
    with db.read() as session:
        return search.find(session, query, departments=departments, limit=kw.pop("limit", 20), **kw)


def departments_by_name(db: Database) -> dict[str, int]:
    with db.read() as session:
        return dict(session.execute(text("SELECT name, id FROM departments")).all())


def test_a_message_is_found_by_words_of_its_subject_body_people_and_attachment_names(postdesk):
    postdesk.send(mail("Invoice overdue", "The turbine hums quietly.", attachment="quarterly-ledger.pdf"))
    postdesk.send(mail("Another question", "Nothing in common here.", sender="bob@example.net"))
    postdesk.drain()
    db = postdesk.app.db
    for query in ("overdue", "turbine", "TURBINE hums", "Greta", "greta@example.org", "quarterly", "ledger.pdf"):
        hits = found(db, query)
        assert [h.subject for h in hits] == ["Invoice overdue"], query
    assert found(db, "turbine missing") == []
    assert found(db, '" * ( )') == []  # no words: nothing, and no syntax error


def test_html_only_mail_is_found_by_its_text_but_not_its_markup_or_scripts(postdesk):
    postdesk.send(
        html_only(
            "Styled", "<html><style>.zebra{}</style><script>var quokka=1</script><p>Kangaroo <b>jumps</b></p></html>"
        )
    )
    postdesk.drain()
    db = postdesk.app.db
    assert [h.subject for h in found(db, "kangaroo jumps")] == ["Styled"]
    assert found(db, "quokka") == [] and found(db, "zebra") == []


def test_search_sees_only_the_departments_it_is_given(postdesk):
    postdesk.send(mail("Support thing", "pelican"))
    postdesk.send(mail("Billing thing", "pelican", to="billing@example.com"), to="billing@example.com")
    postdesk.drain()
    db = postdesk.app.db
    ids = departments_by_name(db)
    assert [h.subject for h in found(db, "pelican", frozenset({ids["Billing"]}))] == ["Billing thing"]
    assert {h.subject for h in found(db, "pelican")} == {"Support thing", "Billing thing"}
    assert found(db, "pelican", frozenset()) == []


def test_results_come_newest_first_in_keyset_pages(postdesk):
    for n in range(5):
        postdesk.send(mail(f"Report {n}", "albatross sighting"))
        postdesk.drain()
    db = postdesk.app.db
    first = found(db, "albatross", limit=2)
    second = found(db, "albatross", limit=2, before=first[-1].message_id)
    third = found(db, "albatross", limit=2, before=second[-1].message_id)
    assert [h.subject for h in first + second + third] == [f"Report {n}" for n in (4, 3, 2, 1, 0)]


def test_a_removed_message_is_no_longer_found_and_a_deleted_one_leaves_the_index_too(postdesk):
    postdesk.send(mail("First", "walrus"))
    postdesk.send(mail("Second", "walrus"))
    postdesk.drain()
    db = postdesk.app.db
    first, second = sorted(h.message_id for h in found(db, "walrus"))
    with db.write() as session:
        search.remove(session, [first])
    assert [h.message_id for h in found(db, "walrus")] == [second]
    with db.write() as session:  # however a message goes (here its ticket), its index row goes with it
        ticket_id = session.scalar(select(Message.ticket_id).where(Message.id == second))
        session.execute(delete(Ticket).where(Ticket.id == ticket_id))
    assert found(db, "walrus") == []
    with db.read() as session:
        left = session.scalar(text("SELECT count(*) FROM message_search"))
    assert left == 0


def _database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_after_scrub_no_byte_of_a_removed_messages_words_is_left_in_the_sqlite_file(postdesk):
    if not postdesk.app.db.is_sqlite:
        pytest.skip("the byte scan reads the SQLite file; PostgreSQL's copies go at VACUUM (erasure)")
    canary = "qz" + secrets.token_hex(8)
    postdesk.send(mail(f"About {canary}", f"My word is {canary}, keep it.", attachment=f"{canary}.pdf"))
    postdesk.send(mail("Someone else", "a kept message about otters"))
    postdesk.drain()
    db = postdesk.app.db
    path = Path(db.engine.url.database)
    assert [h.subject for h in found(db, canary)] == [f"About {canary}"]
    with db.write() as session:  # what an erasure does to the rows (tickets, messages, raw mail, ...)
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.subject == f"About {canary}"))
        session.execute(delete(Ticket).where(Ticket.id == ticket_id))
        session.execute(text("DELETE FROM contacts WHERE id NOT IN (SELECT contact_id FROM tickets)"))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    tail = canary[-10:].encode()  # the index stores a word after the prefix it shares with the one before
    assert tail in _database_bytes(path), "the scan must see what FTS5 leaves behind a delete"
    with db.write() as session:
        search.scrub(session)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert tail not in _database_bytes(path)
    assert found(db, canary) == [] and [h.subject for h in found(db, "otters")] == ["Someone else"]


def test_any_text_typed_into_the_search_box_is_a_query_never_an_error(postdesk):
    postdesk.send(mail("Known words", "alpha beta_gamma δέλτα"))
    postdesk.drain()
    db = postdesk.app.db

    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.text(max_size=60) | st.sampled_from(['"', "NEAR(a b)", "a OR b", "col:x", "*", "^x", "a AND", "_", "'"]))
    def check(query):
        hits = found(db, query)
        assert all(h.subject == "Known words" for h in hits)

    check()
    assert [h.subject for h in found(db, "ΔΈΛΤΑ")] == ["Known words"]  # any case


def test_the_command_line_searches_the_same_index(postdesk):
    postdesk.send(mail("Lost parcel", "the wombat shipment"))
    postdesk.send(mail("Other", "nothing to see"))
    postdesk.drain()
    done = subprocess.run(
        [sys.executable, "-m", "postdesk", "search", "WOMBAT", "--json"],
        env=settings_env(postdesk.settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [row["subject"] for row in json.loads(done.stdout)] == ["Lost parcel"]
