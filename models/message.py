"""Messages with their recipients and attachments: what arrived, as it arrived, and why it went where it went.

Every row here holding a person's data is found from the person by an index: messages by sender
(`from_address`, `envelope_from`, `contact_id`), recipients by `address`. They are written and
erased by the message store (`tickets.store`) only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8), default="in")
    raw_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    spool_id: Mapped[str] = mapped_column(String(64), default="", index=True)  # "queued as <id>" → its message
    source: Mapped[str] = mapped_column(String(16), default="smtp")
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"))
    envelope_from: Mapped[str] = mapped_column(String(320), default="", index=True)  # lower-cased
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    date: Mapped[datetime | None]
    message_id_header: Mapped[str] = mapped_column(String(998), default="", index=True)
    in_reply_to: Mapped[list] = mapped_column(JSON, default=list)
    references: Mapped[list] = mapped_column(JSON, default=list)
    list_id: Mapped[str] = mapped_column(String(400), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(320), default="", index=True)
    from_name: Mapped[str] = mapped_column(String(400), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[list] = mapped_column(JSON, default=list)
    thread_rule: Mapped[str] = mapped_column(String(32), default="")
    upstream: Mapped[dict] = mapped_column(JSON, default=dict)

    ticket = relationship("Ticket", back_populates="messages")
    recipients = relationship("Recipient", cascade="all, delete-orphan", order_by="Recipient.id")
    attachments = relationship("Attachment", cascade="all, delete-orphan", order_by="Attachment.id")
    removed_attachments = relationship(
        "RemovedAttachment", cascade="all, delete-orphan", order_by="RemovedAttachment.id"
    )
    verdict = relationship("SpamVerdict", uselist=False, cascade="all, delete-orphan")
    imap_copy = relationship("ImapCopy", uselist=False, cascade="all, delete-orphan")


class RawMessage(Base):
    """A message's bytes as received (CRLF-normalised; `Message.raw_sha256` is their hash).

    In the database, beside the row, not in the blob store: a file per message cost the runner more
    than everything else it does (bench/results/runner.md), while the rows ride on the batch's one commit.
    Zammad keeps raw mail in its database by default for the same kind of reason. Attachments,
    shared between messages, stay content-addressed files.
    """

    __tablename__ = "raw_messages"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class Recipient(Base):
    """An address a message names: `envelope` (RCPT TO), `to`, `cc`, `reply-to`, or `from` (each
    author, when From names several: `Message.from_address` then holds only whom it is credited to)."""

    __tablename__ = "recipients"
    id: Mapped[int] = serial_id()
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(400), default="")

    __table_args__ = (Index("ix_recipients_address", "address"), NEVER_REUSED)


class Attachment(Base):
    """A part of a message kept as a blob; deleting the row takes one off the blob's count (a trigger)."""

    __tablename__ = "attachments"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    blob_id: Mapped[int] = mapped_column(ForeignKey("blobs.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    declared_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    sniffed_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    content_id: Mapped[str] = mapped_column(String(998), default="")
    inline: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RemovedAttachment(Base):
    """What an agent sees where a retention rule removed an attachment and kept its message: when,
    its type and size. Not its file name, which can name a person (the raw mail, while kept, has it)."""

    __tablename__ = "removed_attachments"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    declared_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    removed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImapCopy(Base):
    """Where a message fetched over IMAP lies on the server: an erasure removes that copy too."""

    __tablename__ = "imap_copies"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(1000))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
