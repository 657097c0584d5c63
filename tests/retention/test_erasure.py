"""Erasing a person, over mail that arrived by SMTP: their tickets go (or stay as empty shells),
only their own messages go from other people's tickets, every row naming them goes, a job killed
midway finishes when run again, and nothing of theirs comes back."""

from __future__ import annotations

import itertools
import mailbox
import os
import shutil
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from models import (
    Attachment,
    AuditEvent,
    Blob,
    Contact,
    ErasureJob,
    Message,
    Recipient,
    SenderRule,
    Ticket,
    TicketNote,
    TicketParticipant,
)
from models.base import utcnow
from models.mail.envelope import Envelope
from retention.erasure import ErasureError
from canary import Canaries
from query_plans import full_scans
from serve import settings_env
from tickets import search
from tickets.signing import MessageIdSigner
from tickets.work import WorkError, add_note, merge, split


def parse_bytes(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


ANN, BOB = "ann@example.org", "bob@example.net"
PDF = b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n"
SHARED = b"%PDF-1.4\nthe same terms and conditions everyone sends\n%%EOF\n"
_ids = itertools.count()


def mail(sender: str, subject: str, *, cc: str = "", reply_to: str = "", files=(), body: str = "Please help.") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Message-ID"] = f"<erase{next(_ids)}.{os.getpid()}@example.org>"
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def deliver(postdesk, raw: bytes, sender: str) -> Message:
    code, reply = postdesk.send(raw, sender=sender)
    assert code == 250, reply
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).where(Message.spool_id == reply.split()[-1].decode())).one()


def count(postdesk, model, *where) -> int:
    with postdesk.app.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def erase(postdesk, target: str = ANN, mode: str = "delete", **kwargs):
    engine = postdesk.app.eraser()
    return engine.erase(engine.person(target), mode, "tester", **kwargs)


@pytest.fixture
def conversations(postdesk):
    """Ann's ticket (Bob answers in it), Bob's ticket (Ann writes in it, he copies her later)."""
    anns = deliver(
        postdesk,
        mail(f"Ann Example <{ANN}>", "My printer", cc=BOB, files=[("ann.pdf", PDF), ("terms.pdf", SHARED)]),
        ANN,
    )
    bob_in_anns = deliver(postdesk, mail(BOB, "Re: My printer", cc=ANN, reply_to=f"<{anns.message_id_header}>"), BOB)
    ann_again = deliver(postdesk, mail(ANN, "Re: My printer", reply_to=f"<{anns.message_id_header}>"), ANN)
    bobs = deliver(postdesk, mail(BOB, "Invoice", cc=ANN, files=[("terms.pdf", SHARED)]), BOB)
    ann_in_bobs = deliver(postdesk, mail(ANN, "Re: Invoice", reply_to=f"<{bobs.message_id_header}>"), ANN)
    bob_later = deliver(postdesk, mail(BOB, "Re: Invoice", cc=ANN, reply_to=f"<{ann_in_bobs.message_id_header}>"), BOB)
    assert bob_in_anns.ticket_id == ann_again.ticket_id == anns.ticket_id
    assert ann_in_bobs.ticket_id == bob_later.ticket_id == bobs.ticket_id
    return {"anns": anns, "bobs": bobs, "ann_in_bobs": ann_in_bobs, "bob_later": bob_later}


def test_the_preview_says_exactly_what_will_go(postdesk, conversations):
    engine = postdesk.app.eraser()
    preview = engine.preview(engine.person(" <ANN@example.org> "))
    assert preview.counts() == {
        "tickets_requested": 1,
        "tickets_of_others": 1,
        "messages": 4,
        "messages_sent": 3,
        "attachments": 2,
        "blob_files": 1,
        "shared_blob_files_kept": 1,
        "spam_labels": 0,
        "imap_server_copies": 0,
        "recipient_rows_in_kept_mail": 2,
        "participant_rows": 2,
        "sender_rule": 0,
        "contact": 1,
        "spool_entries": 0,
        "kept_messages_mentioning_them": 0,
    }


def test_erasing_removes_their_tickets_and_only_their_own_messages_from_others_tickets(postdesk, conversations):
    c = conversations
    with postdesk.app.db.write() as session:
        session.add(SenderRule(pattern=ANN, action="allow"))

    receipt = erase(postdesk)

    assert count(postdesk, Ticket, Ticket.id == c["anns"].ticket_id) == 0
    with postdesk.app.db.read() as session:
        kept = session.scalars(select(Message.id).where(Message.ticket_id == c["bobs"].ticket_id)).all()
        assert kept == [c["bobs"].id, c["bob_later"].id]
        assert session.scalars(
            select(TicketParticipant.address).where(TicketParticipant.ticket_id == c["bobs"].ticket_id)
        ).all() == [BOB, "support@example.com"]
        assert session.scalar(select(Contact.address)) == BOB
    for model, column in (
        (Recipient, Recipient.address),
        (TicketParticipant, TicketParticipant.address),
        (Contact, Contact.address),
        (SenderRule, SenderRule.pattern),
        (Message, Message.from_address),
    ):
        assert count(postdesk, model, column == ANN) == 0, model.__name__
    with postdesk.app.db.read() as session:
        assert postdesk.app.store.copies_of(session, ANN).sent == []
        [shared] = session.scalars(select(Blob)).all()
        assert shared.refcount == 1 and postdesk.app.blobs.path(shared.sha256).read_bytes() == SHARED
    assert receipt.counts["messages"] == 4 and receipt.counts["tickets"] == 1 and receipt.counts["blobs"] == 1
    assert receipt.counts["recipients_unnamed"] == 2 and receipt.counts["sender_rules_unnamed"] == 1


def test_the_receipt_and_the_audit_record_hold_counts_and_a_keyed_hash_never_the_address(postdesk, conversations):
    receipt = erase(postdesk, ANN.upper())
    text = str(receipt.as_dict())
    assert "ann" not in text.lower() and len(receipt.subject_hmac) == 64
    ledger = postdesk.app.eraser().ledger
    assert receipt.subject_hmac == ledger.hmac(ANN)
    assert ledger.key_path.exists() and ledger.key_path.stat().st_mode & 0o777 == 0o600
    with postdesk.app.db.read() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "privacy-erase")).all()
        assert (event.actor, event.subject_hmac) == ("tester", receipt.subject_hmac)
        assert event.details["receipt"] == receipt.id and event.details["counts"]["messages"] == 4
        assert "ann" not in str(event.details).lower()
    assert ANN not in ledger.path.read_text() and "ann" not in ledger.path.read_text().lower()


def test_anonymising_keeps_their_tickets_as_shells_without_content(postdesk, conversations):
    c = conversations
    receipt = erase(postdesk, mode="anonymise")
    assert receipt.counts["shells"] == 1 and receipt.counts.get("tickets", 0) == 0
    with postdesk.app.db.read() as session:
        shell = session.get(Ticket, c["anns"].ticket_id)
        assert (shell.subject, shell.contact_id) == ("", None) and shell.erased_at is not None
        assert session.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == shell.id)) == 0
        assert (
            session.scalar(
                select(func.count()).select_from(TicketParticipant).where(TicketParticipant.ticket_id == shell.id)
            )
            == 0
        )
    assert count(postdesk, Message, Message.ticket_id == c["bobs"].ticket_id) == 2


def test_an_erasure_killed_midway_finishes_when_run_again_with_one_receipt(postdesk):
    tickets = [deliver(postdesk, mail(ANN, f"Question {n}"), ANN).ticket_id for n in range(4)]
    calls = []

    def killed(what, done, total):
        calls.append(what)
        if what == "messages" and done == 2:
            raise KeyboardInterrupt  # the process dies after two committed batches

    with pytest.raises(KeyboardInterrupt):
        erase(postdesk, progress=killed)
    assert count(postdesk, Ticket) == 2, "the committed batches stay erased"
    with postdesk.app.db.read() as session:
        [job] = session.scalars(select(ErasureJob)).all()
        assert job.finished_at is None and job.counts["messages"] == 2
    with pytest.raises(ErasureError, match="--mode delete"):
        erase(postdesk, mode="anonymise")

    receipt = erase(postdesk, str(job.contact_id))  # by contact id this time

    assert (
        len(tickets) == 4
        and receipt.id == job.receipt
        and receipt.counts["messages"] == 4
        and receipt.counts["tickets"] == 4
    )
    assert count(postdesk, Ticket) == 0 and count(postdesk, Contact) == 0
    assert count(postdesk, ErasureJob, ErasureJob.finished_at.is_(None)) == 0


def test_a_ticket_is_erased_in_one_transaction(postdesk, conversations):
    """A reader between two batches sees each ticket whole or gone, never half of it."""
    seen = []
    anns = conversations["anns"].ticket_id

    def look(what, done, total):
        if what == "messages":
            seen.append(count(postdesk, Message, Message.ticket_id == anns))

    erase(postdesk, progress=look)
    assert set(seen) <= {0, 3} and seen[0] == 3 and seen[-1] == 0


def test_new_mail_from_them_starts_afresh_and_a_late_reply_never_revives_their_ticket(postdesk, conversations):
    anns = conversations["anns"]
    erase(postdesk)
    signed = MessageIdSigner(b"test-secret", postdesk.settings.smtp_hostname).make(anns.ticket_id)
    late = deliver(
        postdesk,
        mail(ANN, f"Re: [#{anns.ticket_id}] My printer", reply_to=f"<{signed}> <{anns.message_id_header}>"),
        ANN,
    )
    fresh = deliver(postdesk, mail(ANN, "Hello again"), ANN)
    with postdesk.app.db.read() as session:
        tickets = {late.ticket_id, fresh.ticket_id}
        assert anns.ticket_id not in tickets and len(tickets) == 2
        assert late.thread_rule == "new" and session.get(Ticket, late.ticket_id).linked_ticket_id is None
        assert late.contact_id == fresh.contact_id != anns.contact_id
        assert (
            session.scalar(select(func.count()).select_from(Message).where(Message.contact_id == late.contact_id)) == 2
        )


def test_the_same_mail_coming_again_is_dropped_as_erased(postdesk):
    raw = mail(ANN, "Old archive")
    deliver(postdesk, raw, ANN)
    erase(postdesk)
    entry = postdesk.app.spool.put(raw, Envelope(source="import"))  # `import mbox` of an old archive
    postdesk.drain()
    assert count(postdesk, Message) == 0
    assert postdesk.runner.stats["erased"] == 1 and entry


def test_spool_leftovers_holding_their_mail_go_and_the_others_stay(postdesk):
    spool = postdesk.app.spool
    raw_ann, raw_bob = mail(ANN, "Stuck"), mail(BOB, "Also stuck")
    deliver(postdesk, mail(ANN, "Stored"), ANN)
    bad = spool.put(raw_ann, Envelope(mail_from=ANN, rcpt_tos=["support@example.com"]))
    shutil.move(spool.root / "new" / f"{bad}.entry", spool.root / "bad" / f"{bad}.entry")
    (spool.root / "bad" / "x.entry.unreadable").write_bytes(b"\x00garbage From: " + ANN.encode() + b"\r\n")
    (spool.root / "bad" / "y.entry.unreadable").write_bytes(b"\x00garbage of someone else")
    for name, raw in (("1-crashed", raw_ann), ("2-crashed", raw_bob)):  # a crash left them, an hour ago
        (spool.root / "tmp" / name).write_bytes(b'{"mail_from": ""}\n' + raw)
        os.utime(spool.root / "tmp" / name, (time.time() - 3600,) * 2)
    group = spool.stage(raw_ann, Envelope(mail_from=ANN)), spool.stage(raw_bob, Envelope(mail_from=BOB))
    # the runner drains the spool only when told (`drain`): the group waits in new/
    spool.commit(list(group))

    receipt = postdesk.app.eraser().erase(postdesk.app.eraser().person(ANN), "delete", "tester")

    left = list(spool.everything())
    assert sorted(e.raw for e in left) == sorted([raw_bob, b"\x00garbage of someone else"])
    assert receipt.counts["spool_entries"] == 4
    assert [p.name for p in (spool.root / "tmp").iterdir()] == ["2-crashed"]
    assert all(ANN.encode() not in p.read_bytes() for p in spool.root.rglob("*") if p.is_file())


def test_replaying_the_ledger_on_a_restored_backup_erases_again(postdesk, conversations, tmp_path):
    if not postdesk.app.db.is_sqlite:
        pytest.skip("the backup here is a copy of the SQLite file")
    db_file = Path(postdesk.app.db.engine.url.database)
    with postdesk.app.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db_file, tmp_path / "backup.db")
    erase(postdesk)
    with postdesk.app.db.read() as session:
        after = _state(session)
    postdesk.app.db.dispose()
    for leftover in ("postdesk.db-wal", "postdesk.db-shm"):
        (db_file.parent / leftover).unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", db_file)
    assert count(postdesk, Contact, Contact.address == ANN) == 1

    from retention.ledger import replay

    engine = postdesk.app.eraser()
    with postdesk.app.db.write() as session:
        replay(engine.ledger, postdesk.app.store, session)
    with postdesk.app.db.write() as session:
        assert replay(engine.ledger, postdesk.app.store, session).get("messages", 0) == 0  # idempotent
    with postdesk.app.db.read() as session:
        assert _state(session) == after


def _state(session) -> dict:
    return {
        model.__name__: session.execute(select(*model.__table__.c).order_by(*model.__table__.primary_key)).all()
        for model in (Message, Ticket, Contact, Recipient, TicketParticipant, Attachment)
    }


def test_the_preview_and_the_erasure_read_only_through_indexes(postdesk, conversations):
    engine, statements = postdesk.app.db.engine, []

    def listener(conn, cursor, sql, params, context, many):
        if sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE", "INSERT") and not many:
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        erase(postdesk)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) > 20
    with engine.connect() as conn:
        scans = {step for sql, params in statements for step in full_scans(conn, sql, params)}
    assert scans == set(), scans


def test_importing_an_old_archive_of_their_mail_drops_it_and_says_so(postdesk, tmp_path):
    raws = [mail(ANN, "In the archive"), mail(BOB, "Also in the archive")]
    deliver(postdesk, raws[0], ANN)
    erase(postdesk)
    archive = mailbox.mbox(tmp_path / "old.mbox")
    for raw in raws:
        archive.add(raw)
    archive.close()

    done = subprocess.run(
        [sys.executable, "-m", "postdesk", "import", "mbox", str(tmp_path / "old.mbox")],
        env=settings_env(postdesk.settings),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "imported 1, duplicates 0, erased 1, quarantined 0"
    assert count(postdesk, Message, Message.from_address == ANN) == 0


def mentioning(address: str) -> bytes:
    """Bob's mail naming `address` in its subject, an encoded-word header, a base64 plain part and a
    quoted-printable HTML part."""
    quoted = Charset("utf-8")
    quoted.body_encoding = QP
    msg = MIMEMultipart("alternative")
    msg["From"], msg["To"], msg["Subject"] = BOB, "support@example.com", f"About {address}"
    msg["Message-ID"] = f"<mention-{next(_ids)}@example.net>"
    msg["X-Forwarded-For-Person"] = Header(f"Zoë <{address}>", "utf-8").encode()
    msg.attach(MIMEText(f"Bitte {address.upper()} zurückrufen.", "plain", "utf-8"))  # base64
    msg.attach(MIMEText(f"<p>Schreib {address} — Grüße</p>", "html", quoted))
    return msg.as_bytes().replace(b"\n", b"\r\n")


def test_redacting_replaces_their_address_where_mail_that_stays_mentions_it(postdesk):
    planted = Canaries.new()
    address = planted["address"]
    deliver(postdesk, mail(address, "My own question"), address)
    kept = deliver(postdesk, mentioning(address), BOB)
    engine = postdesk.app.eraser()
    assert engine.preview(engine.person(address)).mentioned_in == [kept.id]

    receipt = engine.erase(engine.person(address), "delete", "tester", redact=True)

    assert receipt.counts["mentions_redacted"] == 1
    found = planted.scan_database(postdesk.app.db.engine) + planted.scan_tree(postdesk.settings.data_dir)
    assert [f for f in found if f.canary == "address"] == []
    with postdesk.app.db.read() as session:
        message = session.get(Message, kept.id)
        assert message.subject == "About [redacted]"
        assert "Bitte [redacted] zurückrufen." in message.text_body
        raw = parse_bytes(postdesk.app.store.raw_of(session, kept.id))
        assert "Schreib [redacted] — Grüße" in raw.get_body(("html",)).get_content()
        assert "[redacted]" in str(raw["X-Forwarded-For-Person"])
        assert search.find(session, address, departments=None, limit=5) == []
        assert [hit.message_id for hit in search.find(session, "zurückrufen", departments=None, limit=5)] == [kept.id]


def test_without_redact_mail_that_mentions_them_stays_as_it_is(postdesk):
    deliver(postdesk, mail(ANN, "Mine"), ANN)
    kept = deliver(postdesk, mentioning(ANN), BOB)
    receipt = erase(postdesk)
    assert "mentions_redacted" not in receipt.counts
    with postdesk.app.db.read() as session:
        assert session.get(Message, kept.id).subject == f"About {ANN}"


@pytest.mark.parametrize("mode", ["delete", "anonymise"])
def test_notes_on_their_tickets_and_naming_them_on_others_go_and_merged_or_split_tickets_follow(
    postdesk, conversations, mode
):
    c = conversations
    third = deliver(postdesk, mail(ANN, "Another question"), ANN)
    fourth = deliver(postdesk, mail(ANN, "Re: Another question", reply_to=f"<{third.message_id_header}>"), ANN)
    with postdesk.app.db.write() as session:
        now, store = utcnow(), postdesk.app.store
        add_note(session, c["anns"].ticket_id, None, "Ann is cross", actor="agent:1", now=now)
        add_note(session, c["bobs"].ticket_id, None, f"{ANN.upper()} cc'd herself", actor="agent:1", now=now)
        add_note(session, c["bobs"].ticket_id, None, "Bob's own note", actor="agent:1", now=now)
        split_off = split(session, store, fourth.id, actor="agent:1", now=now)
        merge(session, store, third.ticket_id, c["anns"].ticket_id, actor="agent:1", now=now)
        add_note(session, split_off, None, "about the split", actor="agent:1", now=now)

    receipt = erase(postdesk, mode=mode)

    with postdesk.app.db.read() as session:
        assert session.scalars(select(TicketNote.body)).all() == ["Bob's own note"]
        left = session.scalars(select(Ticket)).all()
    assert receipt.counts["notes"] == 3
    assert {t.id for t in left if t.erased_at is None and t.queue != "merged"} == {c["bobs"].ticket_id}
    assert all(t.subject == "" and t.contact_id is None for t in left if t.id != c["bobs"].ticket_id)
    if mode == "delete":
        assert [t.id for t in left] == [c["bobs"].ticket_id]  # the merged pointer went with its ticket
    else:  # a shell takes nothing in, from agents either
        with pytest.raises(WorkError, match="was erased"), postdesk.app.db.write() as session:
            merge(session, postdesk.app.store, c["bobs"].ticket_id, c["anns"].ticket_id, actor="agent:1", now=utcnow())


def test_replies_to_them_and_their_outbox_rows_and_notifications_go_with_their_tickets(postdesk, conversations):
    from models import OutboxMail
    from models.base import utcnow
    from postdesk.accounts import users
    from tickets import notify
    from tickets.replies import Draft, Outgoing, send_reply

    anns_ticket = conversations["anns"].ticket_id
    app = postdesk.app
    with app.db.write() as session:
        sam = users.create(session, "sam@example.com", name="Sam", departments=["Support"])
        notify.choose(session, sam.agent_id, new_ticket=True, assigned=True)
        send_reply(
            session,
            app.store,
            Draft(anns_ticket, "Here is how.", reply_all=True),
            Outgoing(app.signer(), frozenset({"support@example.com"}), "Sam"),
            utcnow(),
        )
        notify.notify_assigned(session, anns_ticket, sam.agent_id, notify.Links("http://x/", "h"), utcnow())
    assert count(postdesk, OutboxMail) == 2

    receipt = erase(postdesk, mode="anonymise")

    assert count(postdesk, OutboxMail) == 0 and count(postdesk, Message, Message.direction == "out") == 0
    assert receipt.counts["outbox"] == 2 and count(postdesk, Ticket, Ticket.id == anns_ticket) == 1
