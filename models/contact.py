"""Contacts: the people who write to us, one per address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    address: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered: Mapped[bool] = mapped_column(default=False)
