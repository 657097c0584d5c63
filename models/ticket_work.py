"""What agents add to a ticket while working on it: internal notes, and who has it open right now.

A note is never mailed. Its text may name the customer, so it is personal data: it goes with its
ticket (the cascade), with an anonymised ticket's content, and where an erasure removes a person's
messages from someone else's ticket, notes there naming the person's address go too (`tickets.store.erase`).
Presence rows hold only agent and ticket ids and a time; they are read while fresh (`tickets.presence`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class TicketNote(Base):
    __tablename__ = "ticket_notes"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketPresence(Base):
    """An agent viewing (or replying on) a ticket, as of `seen_at`."""

    __tablename__ = "ticket_presence"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    activity: Mapped[str] = mapped_column(String(16), default="viewing")  # viewing | replying
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
