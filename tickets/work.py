"""An agent's work on tickets: notes, status, assignment, merging, and moving or splitting off a message.

The web view and the command line call these inside a write transaction; each checks what it is
given (a `WorkError` says why not, in words for people) and writes one audit record (`actor`,
`ticket-*`/`message-*`, ids only: never a note's text, a subject or an address). Who may touch
which ticket is the caller's check (`tickets.access`). Messages change tickets through the message
store (`MessageStore.move`), which owns them and their participants.

A merge moves every message and note of one ticket into another and leaves the first as a pointer
(queue "merged", no subject, contact or participants): its page and replies that thread to it go on
to the ticket it was merged into (`tickets.threading`). Moving a ticket's last message away is a merge.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import Agent, AgentDepartment, AuditEvent, Message, Ticket, TicketNote, TicketPresence
from models.db import count
from models.ticket import STATUSES
from tickets import notify, trash
from tickets.store import MessageStore

NOTE_CHARS = 20_000


class WorkError(Exception):
    """The action cannot be done as asked; the text is for the agent."""


def _audit(session: Session, actor: str, action: str, now: datetime, **details) -> None:
    session.add(AuditEvent(at=now, actor=actor[:200], action=action, details=details))


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.merged_into_id is not None:
        raise LookupError(f"no ticket {ticket_id}")
    if ticket.erased_at is not None:
        raise WorkError(f"Ticket {ticket_id} was erased: it takes nothing in.")
    return ticket


def _lock(session: Session, *ticket_ids: int) -> None:
    """PostgreSQL: hold these tickets' rows, in id order, so two agents merging the same two
    tickets crosswise wait for each other instead of each leaving a pointer to the other.
    (SQLite writes one transaction at a time anyway.)"""
    session.execute(
        select(Ticket.id).where(Ticket.id.in_(sorted(set(ticket_ids)))).order_by(Ticket.id).with_for_update()
    )


def add_note(session: Session, ticket_id: int, author_id: int | None, body: str, *, actor: str, now: datetime) -> int:
    body = body.strip()
    if not body:
        raise WorkError("A note needs some text.")
    if len(body) > NOTE_CHARS:
        raise WorkError(f"A note holds at most {NOTE_CHARS:,} characters.")
    ticket = _ticket(session, ticket_id)
    note = TicketNote(ticket_id=ticket.id, author_id=author_id, body=body, created_at=now)
    session.add(note)
    session.flush()
    _audit(session, actor, "ticket-note", now, ticket=ticket.id, note=note.id)
    return note.id


def notes(session: Session, ticket_id: int) -> list[dict]:
    """A ticket's notes, oldest first, with their authors' names."""
    rows = session.execute(
        select(TicketNote.id, TicketNote.body, TicketNote.created_at, Agent.name, Agent.email)
        .outerjoin(Agent, Agent.id == TicketNote.author_id)
        .where(TicketNote.ticket_id == ticket_id)
        .order_by(TicketNote.id)
    )
    return [
        {"id": i, "body": body, "created_at": at, "author": name or email or "a former agent"}
        for i, body, at, name, email in rows
    ]


def set_status(session: Session, ticket_id: int, status: str, *, actor: str, now: datetime) -> None:
    if status not in STATUSES:
        raise WorkError(f"The status is one of {', '.join(STATUSES)}.")
    ticket = _ticket(session, ticket_id)
    before = ticket.status
    if before != status:
        ticket.status, ticket.updated_at, ticket.closed_at = status, now, now if status == "closed" else None
        _audit(session, actor, "ticket-status", now, ticket=ticket.id, before=before, after=status)


def assignable(session: Session, ticket_id: int) -> list[dict]:
    """Active agents who may take the ticket: those of its department, and the admins and owners."""
    department = session.scalar(select(Ticket.department_id).where(Ticket.id == ticket_id))
    in_department = select(AgentDepartment.agent_id).where(AgentDepartment.department_id == department)
    rows = session.execute(
        select(Agent.id, Agent.name, Agent.email)
        .where(Agent.active, Agent.role.in_(("owner", "admin")) | Agent.id.in_(in_department))
        .order_by(Agent.name, Agent.email)
    )
    return [{"id": i, "name": name or email} for i, name, email in rows]


def assign(
    session: Session,
    ticket_id: int,
    agent_id: int | None,
    *,
    actor: str,
    now: datetime,
    links: notify.Links | None = None,
    by_agent_id: int | None = None,
) -> None:
    """Give the ticket to `agent_id`, or to nobody (None). With `links`, the new assignee is emailed
    when they asked for it (`tickets.notify.notify_assigned`; never for taking a ticket oneself)."""
    ticket = _ticket(session, ticket_id)
    if agent_id is not None and agent_id not in {a["id"] for a in assignable(session, ticket.id)}:
        raise WorkError("That agent cannot take this ticket: they are not in its department.")
    if ticket.assignee_id != agent_id:
        before, ticket.assignee_id, ticket.updated_at = ticket.assignee_id, agent_id, now
        _audit(session, actor, "ticket-assign", now, ticket=ticket.id, before=before, after=agent_id)
        if agent_id is not None and links is not None:
            notify.notify_assigned(session, ticket.id, agent_id, links, now, by_agent_id)


def to_trash(session: Session, ticket_id: int, *, actor: str, now: datetime) -> None:
    """Move the ticket to the Trash (`tickets.trash`; purged after the retention rule's days)."""
    try:
        ticket = trash.trash(session, _ticket(session, ticket_id).id, now)
    except trash.TrashError as exc:
        raise WorkError(f"{exc}.") from None
    _audit(session, actor, "ticket-trash", now, ticket=ticket.id, queue=ticket.trashed_from)


def from_trash(session: Session, ticket_id: int, *, actor: str, now: datetime) -> None:
    """Bring the ticket back from the Trash to the queue it left."""
    try:
        ticket = trash.restore(session, _ticket(session, ticket_id).id)
    except trash.TrashError as exc:
        raise WorkError(f"{exc}.") from None
    _audit(session, actor, "ticket-restore", now, ticket=ticket.id, queue=ticket.queue)


def merge(session: Session, store: MessageStore, ticket_id: int, into: int, *, actor: str, now: datetime) -> None:
    """Move every message and note of ticket `ticket_id` into ticket `into`, leaving a pointer."""
    if ticket_id == into:
        raise WorkError("A ticket cannot be merged into itself.")
    _lock(session, ticket_id, into)
    source, target = _ticket(session, ticket_id), _ticket(session, into)
    moved = session.scalars(select(Message.id).where(Message.ticket_id == source.id)).all()
    store.move(session, moved, target.id)
    session.execute(update(TicketNote).where(TicketNote.ticket_id == source.id).values(ticket_id=target.id))
    _leave_pointer(session, source, target, now)
    _audit(session, actor, "ticket-merge", now, ticket=source.id, into=target.id, messages=len(moved))


def _leave_pointer(session: Session, source: Ticket, target: Ticket, now: datetime) -> None:
    """What is left of a ticket whose messages all went to `target`: a pointer to it, and nothing of the customer."""
    session.execute(update(Ticket).where(Ticket.merged_into_id == source.id).values(merged_into_id=target.id))
    session.execute(delete(TicketPresence).where(TicketPresence.ticket_id == source.id))
    source.merged_into_id, source.queue, source.status, source.closed_at = target.id, "merged", "closed", now
    source.subject, source.contact_id, source.assignee_id, source.updated_at = "", None, None, now
    target.updated_at = now


def move_message(
    session: Session, store: MessageStore, message_id: int, into: int, *, actor: str, now: datetime
) -> None:
    """Put one message on ticket `into`; a ticket left without messages becomes a pointer there."""
    source_id = session.scalar(select(Message.ticket_id).where(Message.id == message_id))
    if source_id is None:
        raise LookupError(f"no message {message_id} on a ticket")
    if source_id == into:
        raise WorkError("The message is on that ticket already.")
    _lock(session, source_id, into)
    source, target = _ticket(session, source_id), _ticket(session, into)
    store.move(session, [message_id], target.id)
    target.updated_at = now
    if not session.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == source.id)):
        _leave_pointer(session, source, target, now)
    _audit(session, actor, "message-move", now, message=message_id, ticket=source.id, into=target.id)


def split(session: Session, store: MessageStore, message_id: int, *, actor: str, now: datetime) -> int:
    """Take one message off its ticket into a new ticket, linked to the old one; returns the new ticket's id."""
    message = session.execute(
        select(Message.ticket_id, Message.subject, Message.contact_id).where(Message.id == message_id)
    ).first()
    if message is None or message.ticket_id is None:
        raise LookupError(f"no message {message_id} on a ticket")
    source = _ticket(session, message.ticket_id)
    if count(session, select(func.count()).select_from(Message).where(Message.ticket_id == source.id)) < 2:
        raise WorkError("This is the ticket's only message: there is nothing to split it from.")
    ticket = Ticket(
        subject=message.subject[:1000],
        status="open",
        queue=source.queue,
        department_id=source.department_id,
        mailbox_id=source.mailbox_id,
        contact_id=message.contact_id,
        linked_ticket_id=source.id,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    store.move(session, [message_id], ticket.id)
    _audit(session, actor, "message-split", now, message=message_id, ticket=source.id, into=ticket.id)
    return ticket.id
