"""The ticket rules the pipeline and agents apply: whether a reply may reopen a ticket, and setting its status."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import Ticket
from models.base import utcnow
from tickets.threading import TicketState


def may_reopen(ticket: TicketState, now: datetime, window_days: int) -> bool:
    """A closed ticket takes replies back within the window; later ones start a linked ticket."""
    if ticket.status != "closed":
        return True
    closed = ticket.closed_at or ticket.updated_at
    if closed.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        closed = closed.replace(tzinfo=now.tzinfo)
    return now - closed <= timedelta(days=window_days)


def set_status(session: Session, ticket_id: int, status: str) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise LookupError(f"no ticket {ticket_id}")
    ticket.status = status
    ticket.updated_at = utcnow()
    ticket.closed_at = ticket.updated_at if status == "closed" else None
    return ticket
