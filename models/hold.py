"""Legal holds: a ticket or an address no retention rule and no erasure may touch while the hold lasts.

A hold names its address in clear: enforcing it means finding that address's mail. Removing the hold
deletes the row; the audit trail keeps only the keyed hash of the address (`retention.holds`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class LegalHold(Base):
    __tablename__ = "legal_holds"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    ticket_id: Mapped[int | None] = mapped_column(index=True)  # no foreign key: a hold outlives nothing it holds
    address: Mapped[str | None] = mapped_column(String(320), index=True)  # normalised (lower-cased)
    reason: Mapped[str] = mapped_column(String(1000))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None]  # none: until removed
