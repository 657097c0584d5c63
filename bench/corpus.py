"""The shared corpus for the benches: SpamAssassin 2002 ham and spam, parsed with `models.mail.parse.parse`.

The folder comes from env POSTDESK_CORPUS_DIR (holding spamassassin-2002/{ham,spam}), by default
../shared/corpus next to the project root. Files start with an mbox "From " line and use LF endings;
`raw_bytes` strips the envelope line so every filter sees the same message bytes.
"""

from __future__ import annotations

import os
from datetime import datetime, UTC
from pathlib import Path

from models.mail.message import ParsedMessage

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS_NAME = "spamassassin-2002"
RECEIVED_AT = datetime(2002, 12, 31, tzinfo=UTC)  # only used when a message has no usable date


def corpus_dir() -> Path:
    """The spamassassin-2002 folder (it may not exist: check `available()`)."""
    base = os.environ.get("POSTDESK_CORPUS_DIR") or PROJECT_ROOT.parent / "shared" / "corpus"
    return Path(base) / CORPUS_NAME


def available() -> bool:
    return (corpus_dir() / "ham").is_dir() and (corpus_dir() / "spam").is_dir()


def files() -> list[tuple[Path, str]]:
    """(path, "ham"|"spam") for every corpus file, ham first, each sorted by name."""
    root = corpus_dir()
    return [(p, label) for label in ("ham", "spam") for p in sorted((root / label).iterdir()) if p.is_file()]


def raw_bytes(path: Path) -> bytes:
    """The message bytes without the mbox envelope line."""
    from models.mail.parse import strip_mbox_from

    return strip_mbox_from(path.read_bytes())


def parsed(raw: bytes) -> ParsedMessage:
    from models.mail.parse import parse

    return parse(raw, received_at=RECEIVED_AT)


def load() -> list[tuple[ParsedMessage, str, bytes]]:
    """Every corpus message parsed: (message, label, raw bytes without the envelope line)."""
    out = []
    for path, label in files():
        raw = raw_bytes(path)
        out.append((parsed(raw), label, raw))
    return out
