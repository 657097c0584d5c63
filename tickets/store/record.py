"""What goes into the message store and what comes out of it: plain data, no database objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session

from classifier.judge import Judgement
from models.mail.message import Part


class Addressee(NamedTuple):
    kind: str  # envelope (RCPT TO), to, cc, reply-to, or from (each author, when From names several)
    address: str  # lower-cased
    name: str


class ImapOrigin(NamedTuple):
    """Where a message fetched over IMAP lies on the server."""

    account: str
    folder: str
    uidvalidity: int
    uid: int


@dataclass
class MessageRecord:
    """One message as the pipeline's stages decided it, ready to store."""

    raw: bytes  # CRLF-normalised
    sha256: str
    spool_id: str
    source: str
    received_at: datetime
    envelope_from: str
    recipients: list[Addressee]
    message_id: str
    date: datetime | None
    in_reply_to: list[str]
    references: list[str]
    list_id: str
    subject: str
    from_address: str  # lower-cased
    from_name: str
    text_body: str
    html_body: str
    upstream: dict
    attachments: Sequence[Part]
    mailbox_id: int | None
    flags: list[str]
    thread_rule: str  # signed | reference | token | new | none
    ticket_id: int | None = None  # the ticket it joins; a "new" message opens one, a "none" one has none
    linked_to: int | None = None  # the ticket a "new" message pointed at
    wakes_ticket: bool = False  # a human reply: its ticket opens again and moves up
    queue: str = "inbox"  # of the ticket it opens
    judgement: Judgement | None = None
    imap: ImapOrigin | None = None
    direction: str = "in"  # "out": mail we send (from one of our mailboxes), queued in the outbox

    @property
    def makes_contact(self) -> bool:
        """Spam or automatic mail that would open a ticket makes no contact (until an agent looks);
        nor does our own mail."""
        return (
            bool(self.from_address)
            and self.direction == "in"
            and not (self.ticket_id is None and self.queue in ("spam", "automatic"))
        )

    @property
    def opens_ticket(self) -> bool:
        return self.thread_rule != "none" and self.ticket_id is None

    def participants(self) -> list[str]:
        """The addresses it brings into its ticket: From, To and Cc."""
        return sorted({self.from_address, *(a.address for a in self.recipients if a.kind in ("to", "cc"))} - {""})


@dataclass
class Erased:
    """What an erasure removed; the files of blobs whose count reached zero go after its commit."""

    messages: int = 0
    raw_messages: int = 0
    recipients: int = 0
    attachments: int = 0
    verdicts: int = 0
    imap_copies: int = 0
    outbox: int = 0  # deliveries of our mail, and notifications telling of these messages
    spam_labels: int = 0  # forgotten: learned messages
    spam_events: int = 0  # deleted with their features
    spam_versions: int = 0  # saved model versions rewritten without them
    participants: int = 0
    tickets: int = 0
    shells: int = 0  # tickets kept without content (anonymising)
    contacts: int = 0
    notes: int = 0  # agents' notes on their tickets, or naming them
    blobs: int = 0  # counts that reached zero


class StoreHook(Protocol):
    """Something else holding copies of messages (a full-text index), kept in step by the store."""

    name: str

    def written(self, session: Session, messages: list[tuple[int, MessageRecord]]) -> None:
        """A batch of messages was written (their ids and records), in the same transaction."""

    def erasing(self, session: Session, message_ids: list[int]) -> None:
        """These messages are about to be erased, in the same transaction."""

    def rewritten(self, session: Session, message_ids: list[int]) -> None:
        """These messages' stored text changed (a redaction), in the same transaction."""

    def copies(self, session: Session, message_ids: list[int]) -> int:
        """How many copies of these messages it holds."""
