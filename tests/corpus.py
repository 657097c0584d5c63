"""Reading the shared SpamAssassin corpus as a mail server would receive it."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator


def wire_bytes(path: Path) -> bytes:
    """The message without mbox's `From ` line, with CRLF line endings, as SMTP carries it."""
    raw = path.read_bytes()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def corpus_files(corpus: Path) -> Iterator[tuple[str, Path]]:
    for label in ("ham", "spam"):
        for path in sorted((corpus / label).iterdir()):
            yield label, path
