"""Exporting a person's data for them (the right of access): one zip file, written as a stream.

    README.txt                       what each file is
    contact.json                     their contact, sender rule, and the export's id and time
    tickets.json                     the tickets they requested or wrote in
    messages.json                    every message: headers, text, recipients, verdict, attachments
    messages/<id>.eml                each message as it arrived
    attachments/<message id>/<attachment id>-<file name>

Which messages: those an erasure would remove (everything in the tickets they requested, what
they sent anywhere) and the mail others sent to them (they were a recipient). The database is read
in chunks of `CHUNK` messages and the zip written member by member (zipfile streams each member's
bytes out as they come), so memory does not grow with the messages' count or size beyond the
zip's directory; bench/privacy.py measures it. The file appears whole, by a rename, or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zipfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Attachment, Blob, Contact, Message, RawMessage, Recipient, SenderRule, SpamLabel, SpamVerdict, Ticket
from models.base import utcnow
from models.db import Database
from retention.audit import record
from retention.erasure import Person, in_chunks, plan
from retention.ledger import ErasureLedger
from tickets.store import MessageStore
from tickets.store.labels import message_key

CHUNK = 100

README = """\
Your data, exported by Postdesk (a helpdesk) on {at} (export {id}).

contact.json     Your contact record as the helpdesk keeps it, and a sender rule for your address if
                 there is one ("allow" or "block": whether your mail skips or goes to the spam folder).
tickets.json     The tickets (conversations) you started or wrote in: number, subject, status, dates.
messages.json    Every message you sent, received from us, or that was part of your tickets: who it
                 was from and to, its subject, its text and HTML, the spam filter's verdict, and its
                 attachments (with the path of each file in this archive).
messages/        Each message exactly as it arrived, as an .eml file (open it with any mail program).
attachments/     The files attached to the messages: attachments/<message number>/<number>-<name>.

Counts: {counts}.
"""


def export_person(
    db: Database, store: MessageStore, ledger: ErasureLedger, address: str, output: Path, actor: str
) -> dict[str, int]:
    """Write the zip of `address`'s data to `output`; returns counts (also in the audit trail)."""
    export_id, at = str(uuid.uuid4()), utcnow()
    with db.read() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.address == address))
        person = Person(address, ledger.hmac(address), contact_id)
        todo = plan(session, store, person, counted=False)
    message_ids = sorted(set(todo.messages) | set(todo.named_in))
    part = output.with_name(output.name + ".part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive, db.read() as session:
            counts = _write(archive, session, store, person, message_ids, export_id, at)
        os.replace(part, output)
    finally:
        part.unlink(missing_ok=True)
    with db.write() as session:
        record(session, actor, "privacy-export", person.subject, {"receipt": export_id, "counts": counts})
    return counts


def _write(
    archive: zipfile.ZipFile,
    session: Session,
    store: MessageStore,
    person: Person,
    message_ids: list[int],
    export_id: str,
    at: datetime,
) -> dict[str, int]:
    tickets = sorted(
        {t for t in in_chunks(session, select(Message.ticket_id), Message.id, message_ids, scalars=True) if t}
    )
    _json(archive, "contact.json", _contact(session, person, export_id, at))
    _json(
        archive,
        "tickets.json",
        [
            _ticket(row)
            for row in in_chunks(
                session,
                select(
                    Ticket.id,
                    Ticket.subject,
                    Ticket.status,
                    Ticket.queue,
                    Ticket.created_at,
                    Ticket.updated_at,
                    Ticket.closed_at,
                ),
                Ticket.id,
                tickets,
            )
        ],
    )
    attachments = 0
    with archive.open("messages.json", "w", force_zip64=True) as out:
        out.write(b"[")
        for n, message in enumerate(_messages(session, message_ids)):
            out.write((b",\n" if n else b"\n") + json.dumps(message, ensure_ascii=False, default=str).encode())
            attachments += len(message["attachments"])
        out.write(b"\n]\n")
    for i in range(0, len(message_ids), CHUNK):
        chunk = message_ids[i : i + CHUNK]
        for message_id, raw in session.execute(
            select(RawMessage.message_id, RawMessage.raw).where(RawMessage.message_id.in_(chunk))
        ):
            archive.writestr(f"messages/{message_id}.eml", raw)
        for attachment_id, message_id, filename, sha256 in session.execute(
            select(Attachment.id, Attachment.message_id, Attachment.filename, Blob.sha256)
            .join(Blob, Blob.id == Attachment.blob_id)
            .where(Attachment.message_id.in_(chunk))
        ):
            with (
                open(store.blobs.path(sha256), "rb") as blob,
                archive.open(_attachment_path(message_id, attachment_id, filename), "w", force_zip64=True) as out,
            ):
                shutil.copyfileobj(blob, out, 1 << 20)
    counts = {"messages": len(message_ids), "tickets": len(tickets), "attachments": attachments}
    archive.writestr(
        "README.txt",
        README.format(
            at=at.isoformat(timespec="seconds"), id=export_id, counts=", ".join(f"{k} {v}" for k, v in counts.items())
        ),
    )
    return counts


def _contact(session: Session, person: Person, export_id: str, at: datetime) -> dict:
    contact = session.get(Contact, person.contact_id) if person.contact_id is not None else None
    rule = session.scalar(select(SenderRule.action).where(SenderRule.pattern == person.address))
    return {
        "export": export_id,
        "exported_at": at.isoformat(),
        "address": person.address,
        "contact": None
        if contact is None
        else {"id": contact.id, "name": contact.name, "created_at": contact.created_at.isoformat()},
        "sender_rule": rule,
    }


def _ticket(row) -> dict:
    return {
        "id": row.id,
        "subject": row.subject,
        "status": row.status,
        "queue": row.queue,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "closed_at": _iso(row.closed_at),
    }


def _messages(session: Session, message_ids: list[int]):
    """Each message as a dict, read a chunk at a time."""
    for i in range(0, len(message_ids), CHUNK):
        chunk = message_ids[i : i + CHUNK]
        recipients, attachments = defaultdict(list), defaultdict(list)
        for message_id, kind, address, name in session.execute(
            select(Recipient.message_id, Recipient.kind, Recipient.address, Recipient.name)
            .where(Recipient.message_id.in_(chunk))
            .order_by(Recipient.id)
        ):
            recipients[message_id].append({"kind": kind, "address": address, "name": name})
        for a in session.execute(
            select(
                Attachment.id,
                Attachment.message_id,
                Attachment.filename,
                Attachment.declared_type,
                Attachment.sniffed_type,
                Attachment.size,
            )
            .where(Attachment.message_id.in_(chunk))
            .order_by(Attachment.id)
        ):
            attachments[a.message_id].append(
                {
                    "filename": a.filename,
                    "declared_type": a.declared_type,
                    "type": a.sniffed_type,
                    "size": a.size,
                    "file": _attachment_path(a.message_id, a.id, a.filename),
                }
            )
        verdicts = {
            v.message_id: {"score": v.score, "verdict": v.verdict}
            for v in session.execute(
                select(SpamVerdict.message_id, SpamVerdict.score, SpamVerdict.verdict).where(
                    SpamVerdict.message_id.in_(chunk)
                )
            )
        }
        labels = dict(
            session.execute(
                select(SpamLabel.key, SpamLabel.label).where(SpamLabel.key.in_([message_key(m) for m in chunk]))
            )
            .tuples()
            .all()
        )
        for m in session.execute(select(*Message.__table__.c).where(Message.id.in_(chunk)).order_by(Message.id)):
            yield {
                "id": m.id,
                "ticket": m.ticket_id,
                "received_at": _iso(m.received_at),
                "date": _iso(m.date),
                "from": {"address": m.from_address, "name": m.from_name},
                "envelope_from": m.envelope_from,
                "recipients": recipients[m.id],
                "subject": m.subject,
                "message_id": m.message_id_header,
                "in_reply_to": m.in_reply_to,
                "references": m.references,
                "text": m.text_body,
                "html": m.html_body,
                "flags": m.flags,
                "spam_verdict": verdicts.get(m.id),
                "spam_label": labels.get(message_key(m.id)),
                "attachments": attachments[m.id],
                "eml": f"messages/{m.id}.eml",
            }


def _attachment_path(message_id: int, attachment_id: int, filename: str) -> str:
    return f"attachments/{message_id}/{attachment_id}-{filename or 'attachment'}"


def _json(archive: zipfile.ZipFile, name: str, value) -> None:
    archive.writestr(name, json.dumps(value, ensure_ascii=False, indent=1, default=str))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
