"""Durable file primitives shared by the spool, the blob store and the IMAP state: nothing is
acknowledged or forgotten until the bytes and the name pointing at them are on disk."""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by name (a folder's fsync makes renames into it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (the caller renames it into place)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def create_durably(path: Path | str, data: bytes) -> None:
    """Create `path` holding `data`, on disk when this returns, in the fewest system calls.

    Each system call lets go of the GIL, and a thread taking it back from a busy event loop pays
    for a hand-over (futex calls, context switches). `write_durably` makes seven (open, fstat,
    ioctl, lseek, write, fsync, close), this three (open, write with O_DSYNC, close); what that
    saved the SMTP edge: bench/results/smtp_edge.md.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DSYNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`: temp file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(path.name + ".tmp")
    write_durably(tmp, data)
    os.replace(tmp, path)
    fsync_path(path.parent)


class GroupFsync:
    """One fsync of a folder shared by every thread that renamed a file into it meanwhile.

    A caller needs an fsync of the folder that started after its rename. While one runs, new
    callers join the next round; when it ends, one of them runs that round for all, and the
    others sleep until it is over. Each round wakes only its own callers: with one condition for
    all, every waiter woke (and took the GIL back) at each round's end. A failure reaches every
    caller of the round.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._fd = os.open(folder, os.O_RDONLY)  # kept open: two fewer system calls per fsync
        weakref.finalize(self, os.close, self._fd)
        self._lock = threading.Lock()
        self._next = _Round(self._lock)
        self._running = False

    def fsync(self) -> None:
        """Return once an fsync of the folder that started after this call has succeeded."""
        with self._lock:
            mine = self._next
            while not mine.done:
                if self._running:
                    mine.wakeup.wait()
                    continue
                self._running, self._next = True, _Round(self._lock)
                self._lock.release()
                try:
                    os.fsync(self._fd)
                    mine.ok = True
                except Exception as exc:
                    mine.error = exc
                finally:  # also when interrupted: the round ends, its other callers see ok False
                    self._lock.acquire()
                    self._running, mine.done = False, True
                    mine.wakeup.notify_all()
                    self._next.wakeup.notify()  # one caller of the next round runs it
        if not mine.ok:
            raise OSError(f"fsync of {self.folder} failed: {mine.error}") from mine.error


class _Round:
    """One fsync of the folder: its outcome, and the callers waiting for it."""

    def __init__(self, lock: threading.Lock):
        self.wakeup = threading.Condition(lock)
        self.done = self.ok = False
        self.error: Exception | None = None
