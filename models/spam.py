"""The spam filter's data: per-message verdicts, the label ledger, model versions and sender rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class SpamVerdict(Base):
    __tablename__ = "spam_verdicts"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    model_version: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(64), default="model")


class SpamLabel(Base):
    """The ledger: what the model has learned now, one row per message, with its features to unlearn it.

    `key` names the message: `message:<id>` for stored mail, `raw:<sha256>` for files learned
    from the command line or the bootstrap corpus (those are not in the store). A stored message
    with a label cannot be deleted before it is unlearned (no ON DELETE action): a deleted message
    must not stay learned, so its erasure goes through the ledger (`tickets.store`).
    """

    __tablename__ = "spam_labels"
    id: Mapped[int] = serial_id()
    key: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    label: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32))
    features: Mapped[bytes] = mapped_column(LargeBinary)
    learned_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("key", name="uq_spam_labels_key"), NEVER_REUSED)


class SpamEvent(Base):
    """Append-only log of learn (+1) and unlearn (-1) steps: every process replays it to stay in step."""

    __tablename__ = "spam_events"
    __table_args__ = NEVER_REUSED  # replaying processes keep a cursor: an event id is never seen twice
    id: Mapped[int] = serial_id()
    delta: Mapped[int]
    label: Mapped[str] = mapped_column(String(8))
    features: Mapped[bytes] = mapped_column(LargeBinary)
    key: Mapped[str] = mapped_column(String(128), default="", index=True)  # a stored message's events, found
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SpamModelVersion(Base):
    """A saved snapshot of the counts, covering the events up to `last_event_id`."""

    __tablename__ = "spam_model_versions"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    path: Mapped[str] = mapped_column(String(500))
    last_event_id: Mapped[int] = mapped_column(default=0)
    figures: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=False)


class SenderRule(Base):
    """An allow or block rule for an address or a whole domain."""

    __tablename__ = "sender_rules"
    pattern: Mapped[str] = mapped_column(String(320), primary_key=True)
    action: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
