"""The message store: the one owner of every copy of a stored message.

A message's copies: its row (`messages`), its bytes (`raw_messages`), its recipients, the
participants it adds to its ticket, its attachments and their blobs' reference counts and files,
its spam verdict and spam label (through the classifier's ledger), where it lies on an IMAP
server (`imap_copies`), and the ticket and contact rows it creates or touches. Nothing else in
Postdesk writes or deletes these.

    store = MessageStore(blobs, hooks=[...])
    with store.batch(session) as writes:       # the runner: one per transaction
        message_id = writes.write(record)      # a MessageRecord: plain data the pipeline decided
    store.erase(session, [message_id])         # → Erased counts; files go after the commit
    store.move(session, [message_id], ticket_id)   # an agent's merge, move or split
    store.strip_attachments(session, ids, now) # retention: attachments go, placeholders say so
    store.copies_of(session, "a@example.org")  # → Copies: every row and file holding their data
    store.unname(session, store.naming(session, "a@example.org"))  # rows naming them in others' mail
    store.sweep(db)                            # blob files and rows a crash left (serve's start)

Inside: `writes` (what a batch writes at once and what at its end, contacts raced by several
runners), `erase`, `labels` (an agent's spam / not spam), `blobs` (reference counts reaching
zero, the sweep), `copies`, `redact` (an erased person's address where others' mail mentions
it). Every write and erasure is a `sql.Statement`, the one write mechanism; only the rare
redaction edits rows through the ORM. The full-text index (`tickets.search.SearchIndex`, always
there) and any other index plug in as a `StoreHook`: told of each batch written, each erasure
and each redaction in the same transaction, and asked for its copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from classifier.features import Features
from models import Blob, Message, RawMessage
from models.blobstore import BlobStore
from models.db import Database, affected
from classifier.forgetting import Forgotten, forget
from tickets.store import (
    blobs as _blobs,
    copies as _copies,
    erase as _erase,
    labels as _labels,
    moves as _moves,
    naming as _naming,
    redact as _redact,
    strip as _strip,
)
from tickets.store.copies import Copies
from tickets.search import SearchIndex, mentioning
from tickets.store.labels import message_key, spam_keys
from tickets.store.naming import Naming
from tickets.store.record import Addressee, Erased, ImapOrigin, MessageRecord, StoreHook
from tickets.store.writes import Opened, Writes

__all__ = [
    "Addressee",
    "Copies",
    "Erased",
    "ImapOrigin",
    "MessageRecord",
    "MessageStore",
    "Naming",
    "Opened",
    "StoreHook",
    "Writes",
    "message_key",
]


class MessageStore:
    def __init__(self, blobs: BlobStore, hooks: Sequence[StoreHook] = (), spam_dir: Path | None = None):
        self.blobs = blobs
        self.hooks = [SearchIndex(), *hooks]  # the full-text index is always kept in step
        self.spam_dir = spam_dir  # the saved spam model versions, rewritten when a learned message is erased

    @contextmanager
    def batch(self, session: Session) -> Iterator[Writes]:
        """Writes in `session`'s transaction. What waits for the end of the block is written then, and
        the blob files are durable when the block ends (or the blob batch enclosing it)."""
        with self.blobs.batch():
            writes = Writes(session, self.blobs, self.hooks)
            yield writes
            writes.flush()

    def write(self, session: Session, record: MessageRecord) -> int:
        """Store one message on its own; returns its id."""
        with self.batch(session) as writes:
            return writes.write(record)

    def raw_of(self, session: Session, message_id: int) -> bytes:
        """The bytes a stored message arrived as."""
        raw = session.scalar(select(RawMessage.raw).where(RawMessage.message_id == message_id))
        if raw is None:
            raise LookupError(f"no message {message_id}")
        return raw

    def label(
        self, session: Session, message_id: int, label: str, features: Features, *, source: str, actor: str
    ) -> str:
        """Learn a stored message as "spam" or "ham" (unlearning the other label first), flag it, move
        its ticket; "ham" makes the contact spam never got. Returns the ledger's outcome."""
        return _labels.label(Writes(session, self.blobs), message_id, label, features, source=source, actor=actor)

    def erase(self, session: Session, message_ids: Sequence[int], *, shells: bool = False) -> Erased:
        """Remove every copy of these messages `write` made (see `tickets.store.erase`), in `session`'s
        transaction; what the spam filter learned from them is forgotten, so the live model and every
        saved version are count for count ones that never learned them. Blob files whose count reaches
        zero are removed after the commit. `shells`: a ticket left without messages stays, emptied
        (anonymising erasure), instead of going."""
        return _erase.erase(session, self.blobs, self.hooks, self.spam_dir, message_ids, shells)

    def move(self, session: Session, message_ids: Sequence[int], ticket_id: int) -> set[int]:
        """Put these messages on another ticket, their participants with them (see `tickets.store.moves`);
        returns the tickets they came from."""
        return _moves.move(session, message_ids, ticket_id)

    def strip_attachments(self, session: Session, attachment_ids: Sequence[int], now: datetime) -> int:
        """Remove these attachments and keep their messages, each with a placeholder saying when
        (`tickets.store.strip`); blob files whose count reaches zero go after the commit."""
        return _strip.strip(session, self.blobs, attachment_ids, now)

    def drop_raw(self, session: Session, message_ids: Sequence[int]) -> int:
        """Delete the raw bytes of these messages and keep the messages (a retention rule); how many went."""
        ids, gone = sorted(set(message_ids)), 0
        for i in range(0, len(ids), 500):
            gone += affected(session.execute(delete(RawMessage).where(RawMessage.message_id.in_(ids[i : i + 500]))))
        return gone

    def drop_contacts(self, session: Session, contact_ids: Sequence[int]) -> int:
        """Delete those of these contacts no message or ticket points at (a retention rule); how many went."""
        erased = Erased()
        _erase.drop_contacts(session, set(contact_ids), erased)
        return erased.contacts

    def forget_learned(self, session: Session, message_ids: Sequence[int]) -> Forgotten:
        """What the spam filter learned from these messages, forgotten ahead of their erasure: one
        rewrite of the saved versions for many messages instead of one per `erase` call."""
        ids, rows = sorted(set(message_ids)), list[tuple[int, str | None]]()
        for i in range(0, len(ids), 500):
            chunk = select(Message.id, Message.raw_sha256).where(Message.id.in_(ids[i : i + 500]))
            rows += session.execute(chunk).tuples()
        return forget(session, self.spam_dir, spam_keys(rows))

    def naming(self, session: Session, address: str) -> Naming:
        """Rows naming `address` outside its own messages (see `tickets.store.naming`)."""
        return _naming.naming(session, address)

    def unname(self, session: Session, rows: Naming) -> dict[str, int]:
        """Delete rows `naming` found (or the erasure ledger recorded); counts."""
        return _naming.unname(session, rows)

    def mentions(self, session: Session, address: str) -> list[int]:
        """Messages whose text (subject, bodies, sender name) names `address`, found through the index."""
        return _redact.mentions(session, mentioning(session, address), address)

    def redact(self, session: Session, message_ids: Sequence[int], address: str) -> int:
        """Replace `address` with a placeholder in every copy of these messages that holds text
        (see `tickets.store.redact`); how many changed."""
        return _redact.redact(session, self.hooks, message_ids, address)

    def copies_of(self, session: Session, address: str, rows: bool = True) -> Copies:
        """Every row and file holding `address`'s data, by indexed lookups (see `tickets.store.copies`);
        `rows=False`: only who they are and which messages and tickets, not what hangs on them."""
        return _copies.copies_of(session, self.blobs, self.hooks, address, rows)

    def release_unused(self, session: Session, blob_ids: Sequence[int]) -> int:
        """Of these blobs, remove those nothing counts any more, rows and files (what an erasure's
        batch released when a crash came between its commit and the unlinks); how many went."""
        ids, zero = sorted(set(blob_ids)), list[str]()
        for i in range(0, len(ids), 500):
            zero += session.scalars(select(Blob.sha256).where(Blob.id.in_(ids[i : i + 500]), Blob.refcount <= 0)).all()
        return _blobs.release(session, self.blobs, zero)

    def sweep(self, db: Database) -> dict[str, int]:
        """Blob files no row counts and rows that count nothing go; a crashed batch's temporary files
        too. Safe while runners and erasures run (see `tickets.store.blobs`)."""
        return _blobs.sweep(db, self.blobs)
