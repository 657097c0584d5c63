"""The outbox: mail we send, committed before it is sent, and the agents' choice of notifications.

A row is one delivery to make. Mail that belongs to a thread (a reply, a forward, an
auto-acknowledgement) is a stored message (`messages`, direction "out"): its bytes are in
`raw_messages` and its envelope recipients in `recipients`, so the message store's erase finds
every copy, and its outbox row goes with it (ON DELETE CASCADE). A notification to an agent is
not part of any thread: its bytes are in the row (`raw`), its recipient is the agent, and it
hangs on the message it tells of, so it goes when that message is erased.

`last_error` holds the relay's reply code and text with addresses taken out (`tickets.outbox`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow

KINDS = ("reply", "forward", "acknowledgement", "notification")
STATES = ("queued", "sent", "failed")


class OutboxMail(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = serial_id()
    kind: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    mail_from: Mapped[str] = mapped_column(String(320))  # one of our mailboxes
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # a notification's bytes; else the message's
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"), NEVER_REUSED)


class NotificationChoice(Base):
    """What an agent wants to be emailed about (no row: nothing)."""

    __tablename__ = "notification_choices"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    new_ticket: Mapped[bool] = mapped_column(default=False)
    assigned: Mapped[bool] = mapped_column(default=False)
