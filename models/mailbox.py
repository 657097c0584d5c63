"""Departments and the mailboxes (our addresses, with aliases) that feed them."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import NEVER_REUSED, Base, serial_id


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Mailbox(Base):
    __tablename__ = "mailboxes"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    address: Mapped[str] = mapped_column(String(320), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    department: Mapped[Department] = relationship()


class MailboxAlias(Base):
    __tablename__ = "mailbox_aliases"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
