"""The audit trail: who did what, with counts and keyed hashes rather than personal data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject_hmac: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
