"""Content-addressed files on disk: `blobs/ab/<sha256>`, written durably, named by content only.

One level of 256 folders, as Git's objects/: an ext4 folder holds millions of names well, and a
second level (`ab/cd/`) made nearly every new blob create two folders, 0.5 ms of kernel time a
message here (mkdir is slow on this disk), a quarter of the runner's. `BlobStore` moves blobs of
that older layout up when it opens.

The rows in `blobs` count references; a file whose row is gone (a rolled-back transaction,
an erasure) is garbage that `retention` collects; the temporary files of a crashed batch are
removed by `recover()` when `serve` starts. The sender's filename is never a path.

A file is renamed into place only after its bytes are fsynced, so a name that exists always
holds the whole content (a name renamed in before its fsync could be left empty by a power cut,
and a later put of the same content would take it as stored). Inside `batch()` each put writes
its file under a temporary name at once; when the block ends, the files are fsynced together,
renamed into place, and their folders fsynced together. The runner wraps its transaction in one
batch, so every blob and its name are durable before the commit that references them (and
before the spool entry is removed). Outside a batch, a put is durable when it returns.
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
from typing import Iterable, Iterator

from models.files import fsync_path, write_durably

# fsyncs in flight together share ext4 journal commits: 200 4 KB files took 5.4 ms each
# written and fsynced one by one (file, then folder), 0.4 ms each with 8 threads.
_IO_THREADS = 8
_SHA256_HEX = re.compile("[0-9a-f]{64}")
_LAYOUT_MARKER = ".layout-one-level"


class _Batch:
    """The blobs put since a batch began: new files under temporary names, and files already there."""

    def __init__(self, store: "BlobStore"):
        self.store = store
        self.written: dict[str, Path] = {}  # digest → its temporary file, not yet fsynced
        # Files in place: their folders are fsynced too, as another process may have just renamed
        # one in and not yet fsynced its folder.
        self.present: set[str] = set()

    def add(self, digest: str, data: bytes) -> None:
        if digest in self.written or digest in self.present:
            return
        target = self.store.path(digest)
        if target.exists():
            self.present.add(digest)
            return
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
        """fsync the new files, rename them into place, then fsync every folder holding a name."""
        self.store._fsync_all(self.written.values())
        for digest, tmp in list(self.written.items()):
            os.replace(tmp, self.store.path(digest))
            self.present.add(digest)
            del self.written[digest]
        self.store._fsync_all({folder for digest in self.present for folder in self.store._folders(digest)})

    def discard(self) -> None:
        """After a failure: remove the temporary files (renamed ones are garbage for `retention`)."""
        for tmp in self.written.values():
            tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._io = ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="blob-io")  # threads start on use
        self._local = threading.local()
        self._upgrade()

    def path(self, sha256: str) -> Path:
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def _upgrade(self) -> None:
        """Move blobs of the two-level layout (`ab/cd/<sha256>`) up into `ab/`, once: a marker file
        says it is done, so an open does not list every blob. Idempotent and safe to race (two
        processes opening an old store at once), so a crash half-way is finished at the next open."""
        marker = self.root / _LAYOUT_MARKER
        if marker.exists():
            return
        for nested in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]"):
            for old in list(nested.iterdir()) if nested.is_dir() else []:
                with suppress(FileNotFoundError):  # another process moved it first
                    if _SHA256_HEX.fullmatch(old.name):
                        os.replace(old, nested.parent / old.name)
                    else:  # a temporary file a crash left behind
                        old.unlink()
            fsync_path(nested.parent)
            with suppress(OSError):
                nested.rmdir()
        write_durably(marker, b"blobs/ab/<sha256>\n")

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
        """fsync `paths` on the helper threads, a share each: a task per path took twice the CPU
        (50 files and their folders: 7 ms against 3.3 ms)."""
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


def _fsync_each(paths: list[Path]) -> None:
    for path in paths:
        fsync_path(path)
