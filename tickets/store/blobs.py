"""Blob files whose references are gone: removed after the commit that released them, and swept.

A file is unlinked only by `release`, in a transaction that holds its row's lock at count zero
(making a zero row first for a file that has none) and deletes the row: a writer counting a
reference to the same sha256 meanwhile waits for that commit and then writes the file again
(`models.blobstore`), and a file a committed row counts is never unlinked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import DateTime, bindparam, event, exists, select, text
from sqlalchemy.orm import Session

from models import Attachment, Blob
from models.base import table, utcnow
from models.blobstore import BlobStore
from models.db import Database
from tickets.store.sql import Statement

log = logging.getLogger("postdesk.store")

_PENDING = "postdesk.released_blobs"

_BLOBS = table(Blob)
_ZERO_ROW = Statement(
    text(
        "INSERT INTO blobs (sha256, size, refcount, created_at) VALUES (:sha256, 0, 0, :now) "
        "ON CONFLICT (sha256) DO NOTHING"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
)
_DELETE_ZERO = Statement(
    _BLOBS.delete()
    .where(
        _BLOBS.c.sha256 == bindparam("sha256"),
        _BLOBS.c.refcount <= 0,
        ~exists().where(Attachment.__table__.c.blob_id == _BLOBS.c.id),  # a count gone wrong keeps its file
    )
    .returning(_BLOBS.c.sha256)
)


def release(session: Session, blobs: BlobStore, sha256s: Iterable[str]) -> int:
    """Delete the rows of these blobs that count nothing and unlink their files; how many went.
    The caller commits."""
    sha256s, gone = sorted(set(sha256s)), 0  # in one order: two releases lock rows alike
    _ZERO_ROW.many(session, [{"sha256": digest, "now": utcnow()} for digest in sha256s])
    for digest in sha256s:
        if _DELETE_ZERO.one(session, {"sha256": digest}) is not None:
            blobs.delete(digest)
            gone += 1
    return gone


def release_after_commit(session: Session, blobs: BlobStore, sha256s: Iterable[str]) -> None:
    """`release` these blobs in a transaction of their own once `session`'s commits (not if it rolls back)."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()
        event.listen(session, "after_commit", lambda s: _release_pending(s, blobs))
        event.listen(session, "after_rollback", lambda s: s.info.get(_PENDING, set()).clear())
    pending.update(sha256s)


def _release_pending(session: Session, blobs: BlobStore) -> None:
    sha256s, session.info[_PENDING] = session.info[_PENDING], set()
    if not sha256s:
        return
    try:
        with Session(session.get_bind()) as own, own.begin():
            release(own, blobs, sha256s)
    except Exception:  # committed already: the next sweep removes what is left
        log.exception("%d blobs released but not removed; `postdesk blobs sweep` will", len(sha256s))


def sweep(db: Database, blobs: BlobStore) -> dict[str, int]:
    """Remove blob files no row counts and rows that count nothing (left by a crash between a commit
    and its unlinks, or by a rolled-back batch), folder by folder; count the files a counted row
    misses (lost: nothing can bring them back). Also a crashed batch's temporary files."""
    result = {"temporary": blobs.recover(), "removed": 0, "missing": 0}
    for prefix in (f"{n:02x}" for n in range(256)):
        in_range = Blob.sha256.between(prefix, prefix + "g")  # every sha256 starting with `prefix`
        with db.read() as session:  # before the files: a blob committed in between is then a suspect, kept
            rows = dict(session.execute(select(Blob.sha256, Blob.refcount).where(in_range)).tuples().all())
        files = blobs.files(prefix)
        counted = {digest for digest, refcount in rows.items() if refcount > 0}
        suspects = (files - counted) | (set(rows) - counted)
        if suspects:
            with db.write() as session:
                result["removed"] += release(session, blobs, suspects)
        result["missing"] += len(counted - files)
    return result
