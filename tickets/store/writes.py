"""Writing messages: `Writes` applies `MessageRecord`s in one transaction.

What later messages of the same batch read (their contact, ticket, message row and participants,
for threading) is written at once; the rest (raw bytes, verdicts, recipients, attachments, IMAP
copies, blob counts) waits for `flush` and goes in one executemany each, as each statement has a
fixed cost (bench/results/runner.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import DateTime, bindparam, case, or_, select, text
from sqlalchemy.orm import Session

from models import Attachment, Blob, Contact, ImapCopy, Mailbox, Message, RawMessage, Recipient, SpamVerdict, Ticket
from models.base import table, utcnow
from models.blobstore import BlobStore
from tickets.filenames import clean_filename, sniff_type
from tickets.store.record import MessageRecord, StoreHook
from tickets.store.sql import Statement

_NOW = bindparam("now", type_=DateTime(timezone=True))
_CONTACTS, _TICKETS, _BLOBS = table(Contact), table(Ticket), table(Blob)

_FIND_CONTACT = Statement(select(_CONTACTS.c.id, _CONTACTS.c.name).where(_CONTACTS.c.address == bindparam("address")))
# SQL both SQLite (3.35+) and PostgreSQL speak. It returns nothing when another runner added the
# address since the lookup; the lookup then finds theirs.
_ADD_CONTACT = Statement(
    text(
        "INSERT INTO contacts (address, name, created_at, answered) VALUES (:address, :name, :now, false) "
        "ON CONFLICT (address) DO NOTHING RETURNING id"
    ).bindparams(_NOW)
)
_NAME_CONTACT = Statement(
    _CONTACTS.update().where(_CONTACTS.c.id == bindparam("contact_id")).values(name=bindparam("name"))
)
_DEPARTMENT = Statement(select(table(Mailbox).c.department_id).where(table(Mailbox).c.id == bindparam("mailbox_id")))
_OPEN_TICKET = Statement(_TICKETS.insert().returning(_TICKETS.c.id))
_ASLEEP = or_(*(_TICKETS.c.status == status for status in ("pending", "resolved", "closed")))
_WAKE_TICKET = Statement(
    _TICKETS.update()
    .where(_TICKETS.c.id == bindparam("ticket_id"))
    .values(
        status=case((_ASLEEP, "open"), else_=_TICKETS.c.status),
        closed_at=case((_ASLEEP, None), else_=_TICKETS.c.closed_at),
        updated_at=bindparam("now", type_=DateTime(timezone=True)),
    )
)
_INSERT_MESSAGE = Statement(table(Message).insert().returning(table(Message).c.id))
_ADD_PARTICIPANT = Statement(
    text("INSERT INTO ticket_participants (ticket_id, address) VALUES (:ticket_id, :address) ON CONFLICT DO NOTHING")
)
_COUNT_BLOB = Statement(
    text(  # the row's lock is held until the commit: see tickets.store.blobs
        "INSERT INTO blobs (sha256, size, refcount, created_at) VALUES (:sha256, :size, :n, :now) "
        "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + excluded.refcount"
    ).bindparams(_NOW)
)
_BLOB_IDS = select(_BLOBS.c.sha256, _BLOBS.c.id).where(_BLOBS.c.sha256.in_(bindparam("sha256s", expanding=True)))
_LATER = {
    kind: Statement(table(model).insert())
    for kind, model in (
        ("raw", RawMessage),
        ("verdict", SpamVerdict),
        ("recipient", Recipient),
        ("imap", ImapCopy),
        ("attachment", Attachment),
    )
}


class Opened(NamedTuple):
    """A ticket a message opened in this transaction."""

    ticket_id: int
    department_id: int | None


class Writes:
    """The writes of one transaction (see `MessageStore.batch`)."""

    def __init__(self, session: Session, blobs: BlobStore, hooks: Sequence[StoreHook] = ()):
        self.session, self.blobs, self.hooks = session, blobs, hooks
        self.contacts: dict[str, int] = {}  # address → id, known in this transaction
        self.departments: dict[int, int | None] = {}
        self._reset()

    def _reset(self) -> None:
        self.later: dict[str, list[dict]] = {kind: [] for kind in _LATER}
        self.counts: dict[str, list[int]] = {}  # blob sha256 → [size, references]
        self.attachments: list[tuple[str, dict]] = []  # (blob sha256, row without its blob_id)
        self.written: list[tuple[int, MessageRecord]] = []
        self.opened: dict[int, Opened] = {}  # by the id of the message that opened it

    def write(self, record: MessageRecord) -> int:
        """Store one message; returns its id."""
        contact_id = self.contact_id(record.from_address, record.from_name) if record.makes_contact else None
        opened = self._open_ticket(record, contact_id) if record.opens_ticket else None
        ticket_id = opened.ticket_id if opened else self._ticket(record)
        [message_id] = _INSERT_MESSAGE.returned(self.session, _message_row(record, ticket_id, contact_id))
        if opened:
            self.opened[message_id] = opened
        if ticket_id is not None:
            _ADD_PARTICIPANT.many(
                self.session, [{"ticket_id": ticket_id, "address": address[:320]} for address in record.participants()]
            )
        self._later(message_id, record)
        self.written.append((message_id, record))
        return message_id

    def contact_id(self, address: str, name: str) -> int:
        """The contact for `address`, made if new; `name` fills in an empty name."""
        if (known := self.contacts.get(address)) is not None:
            return known
        name, session = name[:400], self.session
        row = _FIND_CONTACT.one(session, {"address": address})
        if row is None:
            made = _ADD_CONTACT.one(session, {"address": address, "name": name, "now": utcnow()})
            row = (made[0], name) if made else _FIND_CONTACT.one(session, {"address": address})
        if row is None:  # theirs was erased in between: this batch fails, and its retry adds one
            raise RuntimeError("a contact neither added nor found")
        contact_id, known_name = row
        if name and not known_name:
            _NAME_CONTACT.run(session, {"contact_id": contact_id, "name": name})
        self.contacts[address] = contact_id
        return contact_id

    def _ticket(self, record: MessageRecord) -> int | None:
        """The ticket the message joins, woken when it should be."""
        if record.thread_rule == "none":
            return None
        if record.ticket_id is not None and record.wakes_ticket:
            _WAKE_TICKET.run(self.session, {"ticket_id": record.ticket_id, "now": record.received_at})
        return record.ticket_id

    def _open_ticket(self, record: MessageRecord, contact_id: int | None) -> Opened:
        department_id = self._department(record.mailbox_id)
        [ticket_id] = _OPEN_TICKET.returned(
            self.session,
            {
                "subject": record.subject[:1000],
                "status": "new",
                "queue": record.queue,
                "mailbox_id": record.mailbox_id,
                "department_id": department_id,
                "contact_id": contact_id,
                "linked_ticket_id": record.linked_to,
            },
        )
        return Opened(ticket_id, department_id)

    def _department(self, mailbox_id: int | None) -> int | None:
        if mailbox_id is None:
            return None
        if mailbox_id not in self.departments:
            row = _DEPARTMENT.one(self.session, {"mailbox_id": mailbox_id})
            self.departments[mailbox_id] = row[0] if row else None
        return self.departments[mailbox_id]

    def _later(self, message_id: int, record: MessageRecord) -> None:
        later = self.later
        later["raw"].append({"message_id": message_id, "raw": record.raw})
        if (j := record.judgement) is not None:
            later["verdict"].append(
                {
                    "message_id": message_id,
                    "score": j.score,
                    "verdict": j.label,
                    "evidence": j.evidence,
                    "model_version": j.version,
                    "reason": j.reason,
                }
            )
        later["recipient"] += [
            {"message_id": message_id, "kind": a.kind, "address": a.address[:320], "name": a.name[:400]}
            for a in record.recipients
        ]
        if record.imap is not None:
            later["imap"].append({"message_id": message_id, **record.imap._asdict()})
        for part in record.attachments:
            digest = self.blobs.put(part.payload)  # durable when the enclosing blob batch ends
            self.counts.setdefault(digest, [len(part.payload), 0])[1] += 1
            self.attachments.append(
                (
                    digest,
                    {
                        "message_id": message_id,
                        "filename": clean_filename(part.filename),
                        "declared_type": part.content_type[:255],
                        "sniffed_type": sniff_type(part.payload),
                        "size": len(part.payload),
                        "content_id": part.content_id[:998],
                        "inline": part.inline,
                    },
                )
            )

    def flush(self) -> None:
        """Write what waited for the end of the batch, and tell the hooks."""
        session = self.session
        if self.counts:
            now = utcnow()  # in sha256 order: two runners counting the same blobs lock them in one order
            _COUNT_BLOB.many(
                session,
                [
                    {"sha256": digest, "size": size, "n": n, "now": now}
                    for digest, (size, n) in sorted(self.counts.items())
                ],
            )
            blob_ids = dict(session.execute(_BLOB_IDS, {"sha256s": sorted(self.counts)}).tuples().all())
            self.later["attachment"] += [{**row, "blob_id": blob_ids[digest]} for digest, row in self.attachments]
        for kind, rows in self.later.items():
            _LATER[kind].many(session, rows)
        for hook in self.hooks:
            hook.written(session, self.written)
        self._reset()


def _message_row(r: MessageRecord, ticket_id: int | None, contact_id: int | None) -> dict:
    return {
        "ticket_id": ticket_id,
        "raw_sha256": r.sha256,
        "size": len(r.raw),
        "spool_id": r.spool_id,
        "source": r.source,
        "mailbox_id": r.mailbox_id,
        "envelope_from": r.envelope_from.lower()[:320],
        "received_at": r.received_at,
        "date": r.date,
        "message_id_header": r.message_id[:998],
        "in_reply_to": r.in_reply_to,
        "references": r.references,
        "list_id": r.list_id[:400],
        "subject": r.subject,
        "from_address": r.from_address[:320],
        "from_name": r.from_name[:400],
        "contact_id": contact_id,
        "text_body": r.text_body,
        "html_body": r.html_body,
        "flags": sorted(set(r.flags)),
        "thread_rule": r.thread_rule,
        "upstream": r.upstream,
        "direction": r.direction,
    }
