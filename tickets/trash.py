"""The Trash: a ticket an agent deletes waits there (queue "trash"), can be restored, or purged at once.

Trashing keeps everything and records when and from which queue; the queues show it only under
Trash. Purging erases every message of the ticket through the message store in the caller's
transaction (a reader sees the whole ticket or none of it), and the ticket with its last message.
Retention purges the Trash after `retention_trash_days` (`retention.rules`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Message, Ticket
from models.base import utcnow
from tickets.store import Erased, MessageStore

TRASH = "trash"


class TrashError(Exception):
    """The ticket is missing, or not where the request needs it; the message is for people."""


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TrashError(f"no ticket {ticket_id}")
    return ticket


def trash(session: Session, ticket_id: int, now: datetime | None = None) -> Ticket:
    """Move a ticket to the Trash, remembering the queue it leaves."""
    ticket = _ticket(session, ticket_id)
    if ticket.queue == TRASH:
        raise TrashError(f"ticket {ticket_id} is in the Trash already")
    ticket.trashed_from, ticket.queue = ticket.queue, TRASH
    ticket.trashed_at = now or utcnow()
    return ticket


def restore(session: Session, ticket_id: int) -> Ticket:
    """Bring a ticket back from the Trash to the queue it left."""
    ticket = _ticket(session, ticket_id)
    if ticket.queue != TRASH:
        raise TrashError(f"ticket {ticket_id} is not in the Trash")
    ticket.queue, ticket.trashed_from, ticket.trashed_at = ticket.trashed_from or "inbox", None, None
    ticket.updated_at = utcnow()
    return ticket


def purge(session: Session, store: MessageStore, ticket_ids: list[int], *, shells: bool = False) -> Erased:
    """Erase these tickets with every message in them, in `session`'s transaction. A ticket without
    messages goes (or, with `shells`, stays as an empty shell) as the store does it for the last one."""
    ids = sorted(session.scalars(select(Message.id).where(Message.ticket_id.in_(ticket_ids))))
    if ids:
        store.forget_learned(session, ids)  # one rewrite of the saved spam versions for the whole batch
    erased = store.erase(session, ids, shells=shells)
    for ticket in session.scalars(
        select(Ticket).where(Ticket.id.in_(ticket_ids)).execution_options(populate_existing=True)
    ):  # the store wrote past the ORM
        if shells:  # an empty ticket made a shell as the store makes them
            if ticket.erased_at is None:
                ticket.subject, ticket.contact_id, ticket.erased_at = "", None, utcnow()
                ticket.participants.clear()
                erased.shells += 1
        else:
            session.delete(ticket)
            erased.tickets += 1
    return erased
