"""Every row and file holding a person's data, found from their address by indexed lookups only.

From the normalised (lower-cased) address: the contact (unique index), the messages they sent
(`from_address`, `envelope_from`, or the contact's id), the recipient rows and ticket participant
rows naming them, a sender rule for the address. From those messages' ids (primary keys and
indexed foreign keys): raw bytes, recipients, attachments and their blob files, verdicts, spam
labels and ledger events, IMAP copies, and what the hooks hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    Blob,
    Contact,
    ImapCopy,
    Message,
    OutboxMail,
    RawMessage,
    Recipient,
    SenderRule,
    SpamEvent,
    SpamLabel,
    SpamVerdict,
    Ticket,
    TicketParticipant,
)
from models.base import table
from models.blobstore import BlobStore
from models.db import count
from tickets.store.labels import message_key
from tickets.store.record import ImapOrigin, StoreHook

_CHUNK = 500


@dataclass
class Copies:
    """Where a person's data is. `sent` are the messages from them; `named_in` those naming them as
    a recipient (someone else's mail); the counts are of rows hanging on `sent`."""

    address: str
    contact_id: int | None = None
    sent: list[int] = field(default_factory=list)
    named_in: list[int] = field(default_factory=list)
    tickets: list[int] = field(default_factory=list)  # of their messages, or with them as contact
    participant_in: list[int] = field(default_factory=list)
    sender_rule: str | None = None
    raw_messages: int = 0
    recipients: int = 0
    attachments: int = 0
    verdicts: int = 0
    outbox: int = 0
    spam_labels: list[str] = field(default_factory=list)  # ledger keys
    spam_events: int = 0
    imap_copies: list[ImapOrigin] = field(default_factory=list)
    blob_files: list[Path] = field(default_factory=list)
    hooks: dict[str, int] = field(default_factory=dict)


def copies_of(
    session: Session, blobs: BlobStore, hooks: Sequence[StoreHook], address: str, rows: bool = True
) -> Copies:
    address = address.strip().lower()
    copies = Copies(address)
    copies.contact_id = session.scalar(select(Contact.id).where(Contact.address == address))
    sent = {
        *_rows(session, select(Message.id).where(Message.from_address == address)),
        *_rows(session, select(Message.id).where(Message.envelope_from == address)),
    }
    if copies.contact_id is not None:
        sent |= set(_rows(session, select(Message.id).where(Message.contact_id == copies.contact_id)))
    copies.sent = sorted(row[0] for row in sent)
    copies.named_in = sorted(set(session.scalars(select(Recipient.message_id).where(Recipient.address == address))))
    copies.participant_in = sorted(
        session.scalars(select(TicketParticipant.ticket_id).where(TicketParticipant.address == address))
    )
    copies.sender_rule = session.scalar(select(SenderRule.pattern).where(SenderRule.pattern == address))
    tickets = set()
    if copies.contact_id is not None:
        tickets |= set(session.scalars(select(Ticket.id).where(Ticket.contact_id == copies.contact_id)))
    for ids in _chunks(copies.sent):
        tickets |= set(
            session.scalars(select(Message.ticket_id).where(Message.id.in_(ids), Message.ticket_id.is_not(None)))
        )
        if rows:
            _hanging_on(session, blobs, ids, copies)
    copies.tickets = sorted(tickets)
    if not rows:
        return copies
    for hook in hooks:
        copies.hooks[hook.name] = sum(hook.copies(session, ids) for ids in _chunks(copies.sent))
    return copies


HANGING = {
    "raw_messages": RawMessage,
    "recipients": Recipient,
    "attachments": Attachment,
    "verdicts": SpamVerdict,
    "imap_copies": ImapCopy,
    "outbox": OutboxMail,
}


def rows_hanging_on(session: Session, ids: list[int]) -> dict[str, int]:
    """How many rows of each table hanging on these messages (by their indexed message_id)."""
    return {
        name: count(session, select(func.count()).select_from(model).where(table(model).c.message_id.in_(ids)))
        for name, model in HANGING.items()
    }


def _hanging_on(session: Session, blobs: BlobStore, ids: list[int], copies: Copies) -> None:
    counts = rows_hanging_on(session, ids)
    copies.raw_messages += counts["raw_messages"]
    copies.recipients += counts["recipients"]
    copies.attachments += counts["attachments"]
    copies.verdicts += counts["verdicts"]
    copies.outbox += counts["outbox"]
    copies.spam_labels += session.scalars(select(SpamLabel.key).where(SpamLabel.message_id.in_(ids))).all()
    copies.spam_events += count(
        session, select(func.count()).select_from(SpamEvent).where(SpamEvent.key.in_([message_key(i) for i in ids]))
    )
    copies.imap_copies += [
        ImapOrigin(*row)
        for row in _rows(
            session,
            select(ImapCopy.account, ImapCopy.folder, ImapCopy.uidvalidity, ImapCopy.uid).where(
                ImapCopy.message_id.in_(ids)
            ),
        )
    ]
    blob_ids = select(Attachment.blob_id).where(Attachment.message_id.in_(ids)).scalar_subquery()
    copies.blob_files += [
        blobs.path(digest) for digest in session.scalars(select(Blob.sha256).where(Blob.id.in_(blob_ids)))
    ]


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _rows(session: Session, statement) -> list:
    return list(session.execute(statement).all())
