"""Mailboxes from the settings, and the ticket rules the pipeline and agents apply (reopening, status)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, Mailbox, MailboxAlias, Ticket
from models.base import utcnow
from models.upsert import insert_ignore
from postdesk.settings import MailboxConfig
from tickets.threading import TicketState


def sync_mailboxes(session: Session, configs: list[MailboxConfig]) -> dict[str, int]:
    """Make the rows match the settings; returns canonical address → mailbox id."""
    insert_ignore(session, Department, [{"name": c.department} for c in configs])
    departments = {d.name: d.id for d in session.scalars(select(Department))}
    insert_ignore(session, Mailbox, [
        {"address": c.address, "department_id": departments[c.department]} for c in configs
    ])
    boxes = {m.address: m for m in session.scalars(select(Mailbox))}
    for config in configs:
        boxes[config.address].department_id = departments[config.department]
    insert_ignore(session, MailboxAlias, [
        {"address": alias, "mailbox_id": boxes[c.address].id} for c in configs for alias in c.aliases
    ])
    return {address: box.id for address, box in boxes.items()}


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
