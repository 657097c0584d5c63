"""Attachments and raw mail as content-addressed, reference-counted blobs."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.message import Part
from models import Attachment, Blob, Message
from models.base import utcnow
from models.blobstore import BlobStore
from models.upsert import insert_ignore
from tickets.filenames import clean_filename, sniff_type


def store_blob(session: Session, store: BlobStore, data: bytes) -> Blob:
    """Write the file (idempotent), then count one more reference to it."""
    digest = store.put(data)
    insert_ignore(session, Blob, [{"sha256": digest, "size": len(data), "refcount": 0, "created_at": utcnow()}])
    session.execute(update(Blob).where(Blob.sha256 == digest).values(refcount=Blob.refcount + 1))
    return session.scalars(select(Blob).where(Blob.sha256 == digest)).one()


def store_attachments(session: Session, store: BlobStore, message: Message, parts: list[Part]) -> None:
    for part in parts:
        blob = store_blob(session, store, part.payload)
        session.add(Attachment(
            message_id=message.id, blob_id=blob.id, filename=clean_filename(part.filename),
            declared_type=part.content_type[:255], sniffed_type=sniff_type(part.payload),
            size=len(part.payload), content_id=part.content_id[:998], inline=part.inline,
        ))

