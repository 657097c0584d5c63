"""Durable file primitives shared by the spool, the blob store and the IMAP state: nothing is
acknowledged or forgotten until the bytes and the name pointing at them are on disk."""

from __future__ import annotations

import os
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


def replace_durably(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`: temp file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(path.name + ".tmp")
    write_durably(tmp, data)
    os.replace(tmp, path)
    fsync_path(path.parent)
