"""Bringing existing mail in: an mbox file or a Maildir goes through the same spool and pipeline."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path
from collections.abc import Iterator

from sqlalchemy.orm import Session

from ingest.spool import Spool
from models import Message
from models.base import table
from models.db import stored_values
from models.mail.envelope import Envelope
from models.mail.parse import raw_sha256


class MailboxReadError(Exception):
    """The path is not a readable mailbox of the kind asked for."""


def open_mailbox(kind: str, path: Path) -> mailbox.Mailbox:
    """The mbox file or Maildir at `path`, checked to be one; `len()` counts without loading it."""
    if kind == "mbox":
        if not path.is_file():
            raise MailboxReadError(f"{path} is not an mbox file")
        if not _starts_like_mbox(path):  # one .eml file would otherwise be "imported 0" without a word
            raise MailboxReadError(f"{path} is not an mbox file (it does not start with a 'From ' line)")
        box: mailbox.Mailbox = mailbox.mbox(path, create=False)
    elif kind == "maildir":
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise MailboxReadError(f"{path} is not a Maildir (no cur/ or new/ folder)")
        box = mailbox.Maildir(path, factory=None, create=False)
    else:
        raise MailboxReadError(f"unknown mailbox kind {kind!r}: use mbox or maildir")
    return box


# mboxrd: a writer puts one more ">" before every line matching ^>*From , so a reader takes one
# away from every line matching ^>+From . Read so, an mboxrd file comes back exactly, and an mboxo
# file (Python's own `mailbox` writes one: it escapes only "From ") too, except a line that was
# ">From " already, which mboxo itself cannot tell from an escaped one. The mbox files in the wild
# do not say which they are; the mboxrd reading is the one that is exact for one and loses only
# that ambiguous case in the other.
# Unescaped bodies also give mail that arrived over SMTP before the same bytes, so dedupe sees it.
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def unescape_mboxrd(raw: bytes) -> bytes:
    """A message as it was before an mbox writer escaped its `From ` lines (mboxrd rules)."""
    return _ESCAPED_FROM.sub(rb"\1", raw)


def read_mailbox(box: mailbox.Mailbox) -> Iterator[bytes]:
    """Raw bytes of every message, one at a time; from an mbox without its `From ` envelope line
    and with its `>From ` escaping undone."""
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        yield unescape_mboxrd(raw) if isinstance(box, mailbox.mbox) else raw


def _starts_like_mbox(path: Path) -> bool:
    """An mbox starts with its first message's `From ` line; an empty file is an empty mbox."""
    with open(path, "rb") as fh:
        head = fh.read(5)
    return head in (b"", b"From ")


def spool_all(messages: Iterator[bytes], spool: Spool, on_each=lambda: None) -> tuple[list[str], list[str]]:
    """Spool every message; their entry ids and raw sha256s."""
    ids, sha256s = [], []
    for raw in messages:
        ids.append(spool.put(raw, Envelope(source="import")))
        sha256s.append(raw_sha256(raw))
        on_each()
    return ids, sha256s


def outcome(session: Session, spool: Spool, ids: list[str], erased: int = 0) -> dict[str, int]:
    """What became of the spooled entries once none waits, whichever runner took them (the
    import's own or `serve`'s): stored, quarantined in spool/bad, dropped as mail an erasure
    removed (`erased` of them, which the caller counts from the erasure ledger) or as duplicates."""
    stored = len(stored_values(session, table(Message).c.spool_id, ids))
    quarantined = len(spool.which(ids, ("bad",)))
    return {
        "imported": stored,
        "duplicates": len(ids) - stored - quarantined - erased,
        "erased": erased,
        "quarantined": quarantined,
    }
