"""An agent's "spam" / "not spam" on a stored message, as rows: the ledger's label, the message's
flags, its ticket's queue, the contact "not spam" makes, and an audit event."""

from __future__ import annotations

from sqlalchemy import JSON, bindparam, func, select

from classifier import ledger
from classifier.features import Features
from models import AuditEvent, Message, Ticket
from models.base import table
from tickets.store.sql import Statement
from tickets.store.writes import Writes

_M, _T = table(Message), table(Ticket)
_FLAG = Statement(_M.update().where(_M.c.id == bindparam("message_id")).values(flags=bindparam("flags", type_=JSON)))
_MESSAGE_CONTACT = Statement(
    _M.update().where(_M.c.id == bindparam("message_id")).values(contact_id=bindparam("contact_id"))
)
_QUEUE = Statement(_T.update().where(_T.c.id == bindparam("ticket_id")).values(queue=bindparam("queue")))
_TICKET_CONTACT = Statement(
    _T.update()
    .where(_T.c.id == bindparam("ticket_id"))
    .values(contact_id=func.coalesce(_T.c.contact_id, bindparam("contact_id")))
)
_AUDIT = Statement(table(AuditEvent).insert())


def message_key(message_id: int) -> str:
    """A stored message's key in the spam ledger."""
    return f"message:{message_id}"


def spam_keys(messages) -> list[str]:
    """The ledger keys these (id, raw_sha256) messages may be learned under: as stored mail, or as
    the same bytes learned from a file (`postdesk spam learn FILE`)."""
    return [message_key(i) for i, _ in messages] + [f"raw:{sha256}" for _, sha256 in messages if sha256]


def label(writes: Writes, message_id: int, label: str, features: Features, *, source: str, actor: str) -> str:
    session = writes.session
    message = session.execute(
        select(Message.ticket_id, Message.flags, Message.from_address, Message.from_name, Message.contact_id).where(
            Message.id == message_id
        )
    ).first()
    if message is None:
        raise LookupError(f"no message {message_id}")
    outcome = ledger.learn(session, message_key(message_id), label, features, source, message_id=message_id)
    other = "ham" if label == "spam" else "spam"
    flags = sorted({*message.flags, f"marked-{label}"} - {f"marked-{other}"})
    _FLAG.run(session, {"message_id": message_id, "flags": flags})
    if message.ticket_id is not None:
        _move_ticket(writes, message_id, message, label)
    _AUDIT.run(session, {"actor": actor, "action": f"spam-mark-{label}", "details": {"message": message_id}})
    return outcome


def _move_ticket(writes: Writes, message_id: int, message, label: str) -> None:
    session, ticket_id = writes.session, message.ticket_id
    if label == "ham":
        _QUEUE.run(session, {"ticket_id": ticket_id, "queue": "inbox"})
        if message.from_address and message.contact_id is None:  # the contact spam never got
            contact_id = writes.contact_id(message.from_address, message.from_name)
            _MESSAGE_CONTACT.run(session, {"message_id": message_id, "contact_id": contact_id})
            _TICKET_CONTACT.run(session, {"ticket_id": ticket_id, "contact_id": contact_id})
        return
    first = session.scalar(select(func.min(Message.id)).where(Message.ticket_id == ticket_id))
    if first == message_id:  # spam that opened the ticket takes the ticket along; a later one is only flagged
        _QUEUE.run(session, {"ticket_id": ticket_id, "queue": "spam"})
