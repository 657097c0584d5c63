"""Blobs: content-addressed attachment files on disk, counted by the attachment rows using them.

Deleting an attachment row (also by the cascade from its message) takes one off its blob's count
(a trigger, migration 0003); the message store removes a blob whose count reaches zero, row and
file, after the commit (`tickets.store`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class Blob(Base):
    __tablename__ = "blobs"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    refcount: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
