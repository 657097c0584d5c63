"""Removing attachments while their messages stay (a retention rule): a placeholder takes each one's place.

The attachment row goes (its trigger takes one off the blob's count), a `RemovedAttachment` row
says when, with the type and size; blob files whose count reaches zero go after the commit, as
with an erasure (`tickets.store.blobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models import Attachment, Blob, RemovedAttachment
from models.blobstore import BlobStore
from tickets.store.blobs import release_after_commit


def strip(session: Session, blobs: BlobStore, attachment_ids: Sequence[int], now: datetime) -> int:
    """Replace these attachments by placeholders, in `session`'s transaction; how many went."""
    ids = sorted(set(attachment_ids))
    rows = session.execute(
        select(
            Attachment.id, Attachment.message_id, Attachment.declared_type, Attachment.size, Attachment.blob_id
        ).where(Attachment.id.in_(ids))
    ).all()
    if not rows:
        return 0
    session.execute(
        insert(RemovedAttachment),
        [
            {"message_id": r.message_id, "declared_type": r.declared_type, "size": r.size, "removed_at": now}
            for r in rows
        ],
    )
    session.execute(delete(Attachment).where(Attachment.id.in_([r.id for r in rows])))
    zero = session.scalars(select(Blob.sha256).where(Blob.id.in_({r.blob_id for r in rows}), Blob.refcount <= 0)).all()
    release_after_commit(session, blobs, zero)
    return len(rows)
