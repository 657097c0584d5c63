"""Attachments and raw mail as content-addressed, reference-counted blobs."""

from __future__ import annotations

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from ingest.message import Part
from models import Attachment, Blob, Message
from models.base import utcnow
from models.blobstore import BlobStore
from tickets.filenames import clean_filename, sniff_type


# One statement instead of insert, update and select (11% of the runner's time on the corpus),
# in plain SQL that SQLite (3.35+) and PostgreSQL both speak: SQLAlchemy does not cache the
# compiled form of its dialect upserts, and compiling it each time cost as much as the three.
_COUNT_REFERENCE = text(
    "INSERT INTO blobs (sha256, size, refcount, created_at) VALUES (:sha256, :size, 1, :now) "
    "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1 "
    "RETURNING id, sha256, size, refcount, created_at"
).bindparams(bindparam("now", type_=Blob.__table__.c.created_at.type))


_COUNT_REFERENCE_ORM = select(Blob).from_statement(_COUNT_REFERENCE.columns(*Blob.__table__.columns))


def store_blob(session: Session, store: BlobStore, data: bytes) -> Blob:
    """Write the file (idempotent), then count one more reference to it."""
    digest = store.put(data)
    statement = _COUNT_REFERENCE_ORM
    params = {"sha256": digest, "size": len(data), "now": utcnow()}
    return session.scalars(statement, params, execution_options={"populate_existing": True}).one()


def store_attachments(session: Session, store: BlobStore, message: Message, parts: list[Part]) -> None:
    for part in parts:
        blob = store_blob(session, store, part.payload)
        message.attachments.append(Attachment(  # flushed with the message, whether it has an id yet or not
            blob_id=blob.id, filename=clean_filename(part.filename),
            declared_type=part.content_type[:255], sniffed_type=sniff_type(part.payload),
            size=len(part.payload), content_id=part.content_id[:998], inline=part.inline,
        ))

