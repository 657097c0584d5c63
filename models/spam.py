"""The spam filter's data: per-message verdicts, the label ledger, model versions and sender rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class SpamVerdict(Base):
    __tablename__ = "spam_verdicts"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    model_version: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(64), default="model")


class SpamLabel(Base):
    """The ledger: one row per learned message, with what is needed to unlearn it exactly."""

    __tablename__ = "spam_labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    label: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32))
    features: Mapped[bytes] = mapped_column(LargeBinary)
    learned_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("key", name="uq_spam_labels_key"),)


class SpamModelVersion(Base):
    __tablename__ = "spam_model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    path: Mapped[str] = mapped_column(String(500))
    last_label_id: Mapped[int] = mapped_column(default=0)
    figures: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=False)


class SenderRule(Base):
    """An allow or block rule for an address or a whole domain."""

    __tablename__ = "sender_rules"
    pattern: Mapped[str] = mapped_column(String(320), primary_key=True)
    action: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
