"""An agent's "spam" / "not spam" on a stored message: the filter learns it now, the ticket moves.

This is the service method the web view and the command line call. "Not spam" also creates the
contact that spam never got, so the contact list stays free of spammers until a human says otherwise.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier import ledger
from classifier.filter import SpamFilter
from ingest.parse import parse
from models import AuditEvent, Message
from models.blobstore import BlobStore
from tickets import service
from tickets.attachments import raw_of


def message_key(message_id: int) -> str:
    return f"message:{message_id}"


def mark_message(session: Session, message_id: int, label: str, *, blobs: BlobStore, spam_filter: SpamFilter,
                 actor: str, source: str = "agent") -> str:
    """Learn a stored message as `label` (unlearning the other label first); returns the ledger outcome."""
    message = session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no message {message_id}")
    parsed = parse(raw_of(session, blobs, message), received_at=message.received_at)
    outcome = ledger.learn(session, message_key(message_id), label, spam_filter.features(parsed), source,
                           message_id=message_id)
    message.flags = sorted({*message.flags, f"marked-{label}"} - {f"marked-{_other(label)}"})
    if message.ticket is not None:
        _move_ticket(session, message, label)
    session.add(AuditEvent(actor=actor, action=f"spam-mark-{label}", details={"message": message_id}))
    return outcome


def _other(label: str) -> str:
    return "ham" if label == "spam" else "spam"


def _move_ticket(session: Session, message: Message, label: str) -> None:
    ticket = message.ticket
    if label == "ham":
        ticket.queue = "inbox"
        if message.from_address and message.contact_id is None:
            contact_id = service.contact_id_for(session, message.from_address, message.from_name)
            message.contact_id = contact_id
            ticket.contact_id = ticket.contact_id or contact_id
        return
    first = session.scalar(select(Message.id).where(Message.ticket_id == ticket.id).order_by(Message.id).limit(1))
    if first == message.id:  # spam that opened the ticket takes the ticket along; a later one is only flagged
        ticket.queue = "spam"
