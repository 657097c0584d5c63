"""The message store: mail arrives over SMTP, and erasing it removes every copy it made and nothing
a surviving message still uses; a person's copies are found by index; blob files go with their
last reference, after the commit, and the sweep removes what a crash left."""

from __future__ import annotations

import os
from email.message import EmailMessage

import numpy as np
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from classifier.versions import model_from_ledger
from models import (
    Attachment,
    Blob,
    Contact,
    Message,
    RawMessage,
    Recipient,
    SpamLabel,
    Ticket,
    TicketParticipant,
)
from models.blobstore import BlobStore
from query_plans import full_scans
from test_spam_flow import delivered, teach
from waiting import wait_for

PDF = b"%PDF-1.4\n" + os.urandom(2000) + b"\n%%EOF\n"
_ids = iter(range(10**6))


def mail(
    sender: str,
    subject: str,
    *,
    cc: str | None = None,
    reply_to: str | None = None,
    files: tuple[tuple[str, bytes], ...] = (),
    body: str = "Please help.",
) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg_id = f"store{next(_ids)}.{os.getpid()}@example.org"
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "support@example.com", subject, f"<{msg_id}>"
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = f"<{reply_to}>"
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes().replace(b"\n", b"\r\n"), msg_id


def count(postdesk, model) -> int:
    with postdesk.app.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def erase(postdesk, *message_ids: int):
    with postdesk.app.db.write() as session:
        return postdesk.app.store.erase(session, message_ids)


def test_erasing_a_message_removes_every_copy_it_made(postdesk):
    raw, _ = mail("Alice <alice@example.org>", "Printer on fire", cc="carol@example.org", files=(("a.pdf", PDF),))
    message = delivered(postdesk, raw)
    path = blob_path(postdesk, message.id)
    assert path.exists()

    erased = erase(postdesk, message.id)

    assert (
        erased.messages,
        erased.raw_messages,
        erased.attachments,
        erased.tickets,
        erased.contacts,
        erased.participants,
        erased.blobs,
    ) == (1, 1, 1, 1, 1, 3, 1)
    assert erased.recipients == 3  # envelope, To, Cc
    for model in (Message, RawMessage, Recipient, Attachment, Ticket, TicketParticipant, Contact, Blob):
        assert count(postdesk, model) == 0, model.__name__
    assert not path.exists()


def test_a_reply_keeps_its_ticket_thread_and_file_when_the_message_it_answered_is_erased(postdesk):
    first, first_id = mail("alice@example.org", "Printer on fire", cc="carol@example.org", files=(("a.pdf", PDF),))
    opener = delivered(postdesk, first)
    reply, _ = mail("carol@example.org", "Re: Printer on fire", reply_to=first_id, files=(("same.pdf", PDF),))
    answer = delivered(postdesk, reply, sender="carol@example.org")
    assert answer.ticket_id == opener.ticket_id and answer.thread_rule == "reference"

    erased = erase(postdesk, opener.id)

    assert (erased.messages, erased.tickets, erased.participants, erased.blobs) == (1, 0, 1, 0)
    with postdesk.app.db.read() as session:
        ticket = session.get(Ticket, answer.ticket_id)
        assert ticket.subject == "Re: Printer on fire"  # the erased message's subject is not kept as a copy
        assert [m.id for m in ticket.messages] == [answer.id]
        assert sorted(p.address for p in ticket.participants) == ["carol@example.org", "support@example.com"]
        assert session.scalar(select(Contact.address).where(Contact.id == ticket.contact_id)) == "alice@example.org"
        [attachment] = session.scalars(select(Attachment)).all()
        assert session.get(Blob, attachment.blob_id).refcount == 1
    assert blob_path(postdesk, answer.id).read_bytes() == PDF


def test_an_erased_messages_spam_label_is_unlearned_bit_for_bit(postdesk):
    from tickets.spam_marks import mark_message

    teach(postdesk)
    kept = delivered(postdesk, mail("bob@example.org", "Invoice", body="invoice printer order refund")[0])
    erased_one = delivered(postdesk, mail("eve@example.org", "Prize", body="cheap pills casino winner prize")[0])
    spam_filter = postdesk.app.live_model().filter
    with postdesk.app.db.write() as session:
        mark_message(session, kept.id, "ham", store=postdesk.app.store, spam_filter=spam_filter, actor="agent")
    never_learned_it = live_counts(postdesk)
    with postdesk.app.db.write() as session:
        mark_message(session, erased_one.id, "spam", store=postdesk.app.store, spam_filter=spam_filter, actor="agent")
    assert not np.array_equal(live_counts(postdesk)[0], never_learned_it[0])

    assert erase(postdesk, erased_one.id).spam_labels == 1

    after = live_counts(postdesk)
    assert all(np.array_equal(a, b) for a, b in zip(after, never_learned_it, strict=True))
    with postdesk.app.db.read() as session:
        assert session.scalars(select(SpamLabel.key).where(SpamLabel.key.like("message:%"))).all() == [
            f"message:{kept.id}"
        ]
        rebuilt, _ = model_from_ledger(session, spam_filter.model.n_features)
    assert np.array_equal(rebuilt.spam_counts, after[0]) and np.array_equal(rebuilt.ham_counts, after[1])


def live_counts(postdesk) -> tuple:
    live = postdesk.app.live_model()
    with postdesk.app.db.read() as session:
        live.refresh(session)
    model = live.filter.model
    return model.spam_counts.copy(), model.ham_counts.copy(), np.array([model.n_spam, model.n_ham])


def test_a_learned_message_cannot_be_deleted_behind_the_ledgers_back(postdesk):
    from tickets.spam_marks import mark_message

    message = delivered(postdesk, mail("bob@example.org", "Invoice")[0])
    with postdesk.app.db.write() as session:
        mark_message(
            session,
            message.id,
            "ham",
            store=postdesk.app.store,
            spam_filter=postdesk.app.live_model().filter,
            actor="agent",
        )
    with pytest.raises(IntegrityError), postdesk.app.db.write() as session:
        session.execute(text("DELETE FROM messages WHERE id = :id"), {"id": message.id})
    assert count(postdesk, Message) == 1


def test_deleting_a_ticket_any_way_releases_its_blob_references_and_the_sweep_removes_the_file(postdesk):
    message = delivered(postdesk, mail("alice@example.org", "Files", files=(("a.pdf", PDF), ("b.pdf", PDF)))[0])
    path = blob_path(postdesk, message.id)
    with postdesk.app.db.write() as session:
        session.execute(text("DELETE FROM tickets WHERE id = :id"), {"id": message.ticket_id})  # cascades
    with postdesk.app.db.read() as session:
        assert session.scalars(select(Blob.refcount)).all() == [0]
    assert path.exists()
    assert postdesk.app.store.sweep(postdesk.app.db) == {"temporary": 0, "removed": 1, "missing": 0}
    assert not path.exists() and count(postdesk, Blob) == 0


def test_a_blob_file_goes_after_the_commit_and_stays_when_the_erasure_rolls_back(postdesk):
    message = delivered(postdesk, mail("alice@example.org", "Files", files=(("a.pdf", PDF),))[0])
    path = blob_path(postdesk, message.id)
    with pytest.raises(RuntimeError), postdesk.app.db.write() as session:
        assert postdesk.app.store.erase(session, [message.id]).blobs == 1
        assert path.exists()  # not before the commit
        raise RuntimeError("the erasure's transaction fails")
    assert path.exists() and count(postdesk, Message) == 1
    erase(postdesk, message.id)
    assert not path.exists() and count(postdesk, Blob) == 0


def test_the_sweep_removes_what_a_crash_left_and_never_a_counted_file(postdesk):
    message = delivered(postdesk, mail("alice@example.org", "Files", files=(("a.pdf", PDF),))[0])
    counted = blob_path(postdesk, message.id)
    blobs = postdesk.app.blobs
    orphan = blobs.path(blobs.put(b"a rolled-back batch's file"))
    zero = blobs.path(blobs.put(b"an erasure committed, its unlink never ran"))
    with postdesk.app.db.write() as session:
        session.add(Blob(sha256=zero.name, size=1, refcount=0))
    half_written = counted.parent / f".{'0' * 64}.1.ab.tmp"
    half_written.write_bytes(b"half")
    os.utime(half_written, (0, 0))

    assert postdesk.app.store.sweep(postdesk.app.db) == {"temporary": 1, "removed": 2, "missing": 0}

    assert counted.read_bytes() == PDF
    assert not orphan.exists() and not zero.exists() and not half_written.exists()
    counted.unlink()
    assert postdesk.app.store.sweep(postdesk.app.db)["missing"] == 1


def test_ids_are_never_reused(postdesk):
    first = delivered(postdesk, mail("alice@example.org", "One", files=(("a.pdf", PDF),))[0])
    erase(postdesk, first.id)
    second = delivered(postdesk, mail("alice@example.org", "Two", files=(("a.pdf", PDF),))[0])
    assert second.id > first.id and second.ticket_id > first.ticket_id and second.contact_id > first.contact_id
    with postdesk.app.db.read() as session:
        assert session.scalar(select(Attachment.id)) > 1 and session.scalar(select(Blob.id)) > 1


def test_copies_of_lists_every_row_and_file_holding_a_persons_data(postdesk):
    from classifier import senders

    own = delivered(postdesk, mail("Alice <Alice@Example.org>", "Mine", files=(("a.pdf", PDF),))[0])
    with postdesk.app.db.write() as session:
        senders.set_rule(session, "alice@example.org", "block")
    spam = delivered(postdesk, mail("alice@example.org", "Cheap pills")[0])
    relayed = delivered(postdesk, mail("news@lists.example", "Digest")[0], sender="ALICE@example.org")
    named = delivered(
        postdesk, mail("bob@example.org", "For Alice", cc="alice@example.org")[0], sender="bob@example.org"
    )
    delivered(postdesk, mail("bob@example.org", "Nothing of hers")[0], sender="bob@example.org")
    assert spam.contact_id is None  # spam made no contact: found by its sender address

    with postdesk.app.db.read() as session:
        copies = postdesk.app.store.copies_of(session, " ALICE@example.org")

    assert copies.contact_id == own.contact_id
    assert copies.sent == [own.id, spam.id, relayed.id]
    assert copies.named_in == [named.id]
    assert copies.participant_in == sorted({own.ticket_id, spam.ticket_id, named.ticket_id})
    assert copies.tickets == sorted({own.ticket_id, spam.ticket_id, relayed.ticket_id})
    assert copies.sender_rule == "alice@example.org"
    assert (copies.raw_messages, copies.attachments) == (3, 1)
    assert copies.blob_files == [blob_path(postdesk, own.id)]


def test_copies_of_reads_only_through_indexes(postdesk):
    delivered(postdesk, mail("alice@example.org", "Mine", files=(("a.pdf", PDF),))[0])
    delivered(postdesk, mail("bob@example.org", "For Alice", cc="alice@example.org")[0], sender="bob@example.org")
    statements = []
    engine = postdesk.app.db.engine
    listener = lambda conn, cursor, sql, params, context, many: statements.append((sql, params))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with postdesk.app.db.read() as session:
            postdesk.app.store.copies_of(session, "alice@example.org")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) > 10
    with engine.connect() as conn:
        for sql, params in statements:
            assert full_scans(conn, sql, params) == [], sql


def blob_path(postdesk, message_id: int):
    with postdesk.app.db.read() as session:
        sha256 = session.scalar(
            select(Blob.sha256)
            .join(Attachment, Attachment.blob_id == Blob.id)
            .where(Attachment.message_id == message_id)
            .limit(1)
        )
    return postdesk.app.blobs.path(sha256)


class SubjectIndex:
    """A stand-in for a full-text index: it keeps each message's subject, as the store tells it."""

    name = "subjects"

    def __init__(self):
        self.subjects: dict[int, str] = {}

    def written(self, session, messages):
        self.subjects.update((message_id, record.subject) for message_id, record in messages)

    def erasing(self, session, message_ids):
        for message_id in message_ids:
            del self.subjects[message_id]

    def rewritten(self, session, message_ids):
        self.subjects.update(session.execute(select(Message.id, Message.subject).where(Message.id.in_(message_ids))))

    def copies(self, session, message_ids):
        return sum(1 for message_id in message_ids if message_id in self.subjects)


def test_a_hook_holding_copies_is_told_of_every_write_and_erasure_and_counted_in_copies_of(postdesk):
    index = SubjectIndex()
    postdesk.app.store.hooks.append(index)
    first = delivered(postdesk, mail("alice@example.org", "Printer on fire")[0])
    second = delivered(postdesk, mail("alice@example.org", "Still on fire")[0])
    assert index.subjects == {first.id: "Printer on fire", second.id: "Still on fire"}
    with postdesk.app.db.read() as session:  # and the full-text index, the store's own hook
        assert postdesk.app.store.copies_of(session, "alice@example.org").hooks == {"search": 2, "subjects": 2}
    erase(postdesk, first.id)
    assert index.subjects == {second.id: "Still on fire"}
    with postdesk.app.db.read() as session:
        assert postdesk.app.store.copies_of(session, "alice@example.org").hooks == {"search": 1, "subjects": 1}


def test_serve_sweeps_the_blob_files_a_crash_left_when_its_runner_starts(settings, serve):
    blobs = BlobStore(settings.blob_dir)
    orphan = blobs.path(blobs.put(b"an erasure committed; the crash came before its unlink"))
    server = serve()
    try:
        wait_for(lambda: not orphan.exists(), 60, what="serve's runner to sweep the orphan blob")
    finally:
        assert server.terminate() == 0
