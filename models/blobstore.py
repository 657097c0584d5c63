"""Content-addressed files on disk: `blobs/ab/<sha256>`, written durably, named by content only.

One level of 256 folders, as Git's objects/: an ext4 folder holds millions of names well, and a
second level (`ab/cd/`) made nearly every new blob create two folders (mkdir is slow on this disk).

The rows in `blobs` count references, and only the message store (`tickets.store`) decides that a
file goes: it unlinks one while holding its row's lock at count zero, and its sweep removes files
without a row (a rolled-back batch's). The temporary files of a crashed batch are removed by
`recover()`. The sender's filename is never a path.

A file is renamed into place only after its bytes are fsynced, so a name that exists always
holds the whole content (a name renamed in before its fsync could be left empty by a power cut,
and a later put of the same content would take it as stored). Inside `batch()` each put writes
its file under a temporary name at once; when the block ends, the files are fsynced together,
renamed into place, and their folders fsynced together. The message store wraps its writes in one
batch, so every blob and its name are durable before the commit that references them (and
before the spool entry is removed). Outside a batch, a put is durable when it returns.

A file found in place when a put came is looked for again when the batch ends, and written again
if it has gone: the store counts its references between the two, so an erasure may have unlinked
it just before (see `tickets.store`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from collections.abc import Iterable, Iterator

from models.files import fsync_path

# fsyncs in flight together share ext4 journal commits, so 8 threads sync many small files far
# sooner than one (bench/results/runner.md).
_IO_THREADS = 8
_SHA256_HEX = re.compile("[0-9a-f]{64}")


class _Batch:
    """The blobs put since a batch began: new files under temporary names, and files already there."""

    def __init__(self, store: BlobStore):
        self.store = store
        self.written: dict[str, Path] = {}  # digest → its temporary file, not yet fsynced
        # Files in place, with their bytes in case one is gone when the batch ends. Their folders are
        # fsynced too, as another process may have just renamed one in and not yet fsynced its folder.
        self.present: dict[str, bytes] = {}

    def add(self, digest: str, data: bytes) -> None:
        if digest in self.written or digest in self.present:
            return
        target = self.store.path(digest)
        if target.exists():
            self.present[digest] = data
            return
        self._write(digest, target, data)

    def _write(self, digest: str, target: Path, data: bytes) -> None:
        tmp = target.with_name(f".{digest}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fh = open(tmp, "xb")
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "xb")
        self.written[digest] = tmp  # before writing: a failed write leaves nothing behind either
        with fh:
            fh.write(data)

    def sync(self) -> None:
        """Write again the files gone since they were found, fsync the new files, rename them into
        place, then fsync every folder holding a name."""
        for digest in [d for d in self.present if not self.store.path(d).exists()]:
            self._write(digest, self.store.path(digest), self.present.pop(digest))
        self.store._fsync_all(self.written.values())
        for digest, tmp in list(self.written.items()):
            os.replace(tmp, self.store.path(digest))
            self.present[digest] = b""  # in place now: only its folder is fsynced below
            del self.written[digest]
        self.store._fsync_all({folder for digest in self.present for folder in self.store._folders(digest)})

    def discard(self) -> None:
        """After a failure: remove the temporary files (renamed ones are orphans for the store's sweep)."""
        for tmp in self.written.values():
            tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._io = ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="blob-io")  # threads start on use
        self._local = threading.local()

    def path(self, sha256: str) -> Path:
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def recover(self, older_than: float = 3600) -> int:
        """At start: remove temporary files a crash left behind (a batch's, never renamed into place);
        returns how many. Only old ones: another process may be writing a batch right now."""
        cutoff, removed = time.time() - older_than, 0
        for leftover in self.root.glob("[0-9a-f][0-9a-f]/.*.tmp"):
            with suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
        return removed

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256: durable now, or at the end of the open `batch()`."""
        digest = hashlib.sha256(data).hexdigest()
        with self.batch() as batch:
            batch.add(digest, data)
        return digest

    @contextmanager
    def batch(self) -> Iterator[_Batch]:
        """Puts inside the block (on this thread) are durable when it exits without an exception."""
        outer = getattr(self._local, "batch", None)
        if outer is not None:
            yield outer
            return
        self._local.batch = batch = _Batch(self)
        try:
            yield batch
            batch.sync()
        finally:
            self._local.batch = None
            batch.discard()

    def _fsync_all(self, paths: Iterable[Path]) -> None:
        """fsync `paths` on the helper threads, a share each (a task per path took twice the CPU)."""
        paths = list(paths)
        list(self._io.map(_fsync_each, [paths[i::_IO_THREADS] for i in range(min(_IO_THREADS, len(paths)))]))

    def _folders(self, digest: str) -> tuple[Path, Path]:
        leaf = self.path(digest).parent
        return leaf, self.root  # the root matters when mkdir just created the leaf

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def files(self, prefix: str) -> set[str]:
        """The digests of the files in place whose sha256 starts with the two hex digits `prefix`."""
        try:
            with os.scandir(self.root / prefix) as files:
                return {f.name for f in files if _SHA256_HEX.fullmatch(f.name)}
        except FileNotFoundError:
            return set()


def _fsync_each(paths: list[Path]) -> None:
    for path in paths:
        fsync_path(path)
