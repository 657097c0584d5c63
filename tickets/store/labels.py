"""An agent's "spam" / "not spam" on a stored message, as rows: the ledger's label, the message's
flags, its ticket's queue, the contact "not spam" makes, and an audit event."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update

from classifier import ledger
from classifier.features import Features
from models import AuditEvent, Message, Ticket
from tickets.store.sql import Sql
from tickets.store.writes import Writes


def message_key(message_id: int) -> str:
    """A stored message's key in the spam ledger."""
    return f"message:{message_id}"


def label(writes: Writes, message_id: int, label: str, features: Features, *, source: str, actor: str) -> str:
    session = writes.session
    message = Sql.one(session, select(Message.ticket_id, Message.flags, Message.from_address, Message.from_name,
                                      Message.contact_id).where(Message.id == message_id))
    if message is None:
        raise LookupError(f"no message {message_id}")
    outcome = ledger.learn(session, message_key(message_id), label, features, source, message_id=message_id)
    other = "ham" if label == "spam" else "spam"
    flags = sorted({*message.flags, f"marked-{label}"} - {f"marked-{other}"})
    Sql.run(session, update(Message).where(Message.id == message_id).values(flags=flags))
    if message.ticket_id is not None:
        _move_ticket(writes, message_id, message, label)
    Sql.run(session, insert(AuditEvent).values(actor=actor, action=f"spam-mark-{label}",
                                               details={"message": message_id}))
    return outcome


def _move_ticket(writes: Writes, message_id: int, message, label: str) -> None:
    session, ticket = writes.session, update(Ticket).where(Ticket.id == message.ticket_id)
    if label == "ham":
        Sql.run(session, ticket.values(queue="inbox"))
        if message.from_address and message.contact_id is None:  # the contact spam never got
            contact_id = writes.contact_id(message.from_address, message.from_name)
            Sql.run(session, update(Message).where(Message.id == message_id).values(contact_id=contact_id))
            Sql.run(session, ticket.values(contact_id=func.coalesce(Ticket.contact_id, contact_id)))
        return
    first = session.scalar(select(func.min(Message.id)).where(Message.ticket_id == message.ticket_id))
    if first == message_id:  # spam that opened the ticket takes the ticket along; a later one is only flagged
        Sql.run(session, ticket.values(queue="spam"))
