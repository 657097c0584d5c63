"""Tickets (one per conversation) and the addresses taking part in them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import NEVER_REUSED, Base, serial_id, utcnow

STATUSES = ("new", "open", "pending", "resolved", "closed")
# automatic: bounces and auto-replies that matched no ticket; merged: a pointer left by a merge (no queue page shows it)
QUEUES = ("inbox", "review", "spam", "automatic", "trash", "merged")


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = serial_id()
    subject: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    queue: Mapped[str] = mapped_column(String(16), default="inbox")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # indexed: deleting a ticket (an erasure) finds the tickets linked to it without reading them all
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]  # an erased person's ticket kept as a shell: no content, nothing threads into it
    # A ticket merged into another keeps only this pointer (queue "merged"): its page and the replies
    # that thread to it go there. It goes with the ticket it points at (an erasure).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    # in the Trash (queue "trash") since then; the queue it left, for a restore (tickets.trash)
    trashed_at: Mapped[datetime | None] = mapped_column(index=True)
    trashed_from: Mapped[str | None] = mapped_column(String(16))

    department = relationship("Department")
    mailbox = relationship("Mailbox")
    contact = relationship("Contact")
    assignee = relationship("Agent")
    messages = relationship("Message", back_populates="ticket", order_by="Message.id")
    participants = relationship("TicketParticipant", cascade="all, delete-orphan")

    # The queue pages walk one of these per (department, status) in sort order: keyset pages
    # without a sort of the whole queue (tickets.queues).
    __table_args__ = (
        Index("ix_tickets_queue_status", "queue", "status", "id"),
        Index("ix_tickets_queue_status_updated", "queue", "status", "updated_at", "id"),
        Index("ix_tickets_department_queue", "department_id", "queue", "status", "id"),
        Index("ix_tickets_department_queue_updated", "department_id", "queue", "status", "updated_at", "id"),
        Index("ix_tickets_assignee_queue_updated", "assignee_id", "queue", "status", "updated_at", "id"),
        NEVER_REUSED,
    )


class TicketParticipant(Base):
    """An address that took part in a ticket (From, To or Cc of one of its messages)."""

    __tablename__ = "ticket_participants"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
