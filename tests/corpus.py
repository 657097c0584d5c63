"""Reading the shared SpamAssassin corpus as a mail server would receive it."""

from __future__ import annotations

import argparse
import os
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


def bench_options(description: str, root: Path, limit: int) -> argparse.ArgumentParser:
    """The options the benches that replay the corpus share: --corpus (from POSTDESK_CORPUS_DIR, else
    ../shared/corpus beside the project `root`), --limit, --repeat and --data-root."""
    parser = argparse.ArgumentParser(description=description)
    base = Path(os.environ.get("POSTDESK_CORPUS_DIR", root.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=base / "spamassassin-2002")
    parser.add_argument("--limit", type=int, default=limit)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=root / ".bench")
    return parser
