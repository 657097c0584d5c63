"""Two runners adding and releasing references to the same blob at once, in two processes, on
PostgreSQL (where writers run side by side; SQLite has one writer at a time): a file that a
committed row counts is never lost, and when both are done nothing is left over."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from models import Blob, Message
from models.blobstore import BlobStore
from models.db import Database
from tickets.store import MessageStore

ROUNDS = 60

# Each round, as a runner's batch: a message with the shared attachment, then others (the time a
# batch takes between finding the file in place and counting its reference), commit; check, holding
# the blob row's lock, that a counted row has its file; then erase the round's messages (the count
# may reach zero, and the file goes after that commit, while the other process adds it again).
WORKER = """
import hashlib, sys
from sqlalchemy import select
from models import Blob
from models.base import utcnow
from models.blobstore import BlobStore
from models.db import Database
from models.mail.message import Part
from tickets.store import MessageRecord, MessageStore
url, blob_dir, worker, rounds, shared = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].encode()
db, store = Database(url), MessageStore(BlobStore(blob_dir))
digest = hashlib.sha256(shared).hexdigest()
BATCH = 20

def record(n, attached):
    raw = f"Subject: race {worker} {n}-{len(attached)}\\r\\n\\r\\n".encode()
    return MessageRecord(
        raw=raw, sha256=hashlib.sha256(raw).hexdigest(), spool_id="", source="test", received_at=utcnow(),
        envelope_from="", recipients=[], message_id=f"race-{worker}-{n}", date=None, in_reply_to=[], references=[],
        list_id="", subject="race", from_address=f"runner{worker}@example.org", from_name="", text_body="",
        html_body="", upstream={}, attachments=attached, mailbox_id=None, flags=[], thread_rule="new")

for n in range(rounds):
    with db.write() as session, store.batch(session) as writes:
        ids = [writes.write(record(n, [Part("shared.pdf", "application/pdf", shared)]))]
        ids += [writes.write(record(f"{n}.{k}", [])) for k in range(BATCH)]
    with db.write() as session:
        count = session.scalar(select(Blob.refcount).where(Blob.sha256 == digest).with_for_update(read=True))
        if count and not store.blobs.exists(digest):
            sys.exit(f"round {n}: the blob is counted {count} times and its file is gone")
    with db.write() as session:
        store.erase(session, ids)
print("done")
"""


@pytest.fixture
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("two writers at once need PostgreSQL")
    return database_url


def test_two_runners_adding_and_releasing_one_blob_never_lose_a_counted_file(pg_url, tmp_path):
    shared = "a file both runners attach, again and again"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, pg_url, str(tmp_path / "blobs"), str(n), str(ROUNDS), shared],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0 and out.strip() == "done", err[-2000:]

    db, blobs = Database(pg_url), BlobStore(tmp_path / "blobs")
    try:
        with db.read() as session:  # everything erased: nothing left, and nothing for the sweep
            assert session.scalar(select(func.count()).select_from(Message)) == 0
            assert session.scalar(select(func.count()).select_from(Blob)) == 0
        assert MessageStore(blobs).sweep(db) == {"temporary": 0, "removed": 0, "missing": 0}
        assert not [p for p in blobs.root.rglob("*") if p.is_file()]
    finally:
        db.dispose()
