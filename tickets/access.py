"""Who may see what: every lookup by id that the web view makes goes through here, with the
viewer's departments (None: every department). Something outside them is answered as if it did
not exist, so another department's ids tell nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Attachment, Blob, Message, Ticket


def _visible(department_id: int | None, departments: frozenset[int] | None) -> bool:
    return departments is None or (department_id is not None and department_id in departments)


def ticket(session: Session, ticket_id: int, departments: frozenset[int] | None) -> bool:
    """Whether the ticket exists and is visible (its department only is read: the caller loads what it shows)."""
    row = session.execute(select(Ticket.department_id).where(Ticket.id == ticket_id)).first()
    return row is not None and _visible(row[0], departments)


def message(session: Session, message_id: int, departments: frozenset[int] | None) -> Message | None:
    row = session.execute(
        select(Message, Ticket.department_id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.id == message_id)
    ).first()
    return row[0] if row is not None and _visible(row[1], departments) else None


def attachment(
    session: Session, attachment_id: int, departments: frozenset[int] | None
) -> tuple[Attachment, str] | None:
    """The attachment and its blob's sha256, if its message's ticket is visible."""
    row = session.execute(
        select(Attachment, Blob.sha256, Ticket.department_id)
        .join(Blob, Blob.id == Attachment.blob_id)
        .join(Message, Message.id == Attachment.message_id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Attachment.id == attachment_id)
    ).first()
    return (row[0], row[1]) if row is not None and _visible(row[2], departments) else None


def inline_images(session: Session, message_id: int) -> list[tuple[Attachment, str]]:
    """The message's own parts with a Content-ID (what its cid: links may name), with blob sha256s."""
    return [
        tuple(r)
        for r in session.execute(
            select(Attachment, Blob.sha256)
            .join(Blob, Blob.id == Attachment.blob_id)
            .where(Attachment.message_id == message_id, Attachment.content_id != "")
        )
    ]
