"""The erasure ledger: what every erasure removed, as ids and keyed hashes, so that it can be redone.

A file of JSON lines at POSTDESK_ERASURE_LEDGER, only ever appended: each entry is written in one
call under an exclusive lock and fsynced before the transaction it describes commits (so the
ledger may name something a failed transaction left, which a rerun erases anyway, but never misses
what was erased). It lives outside the database and must stay out of every backup: a restored
backup brings erased rows back, and `replay` removes them again.

The HMAC key lives beside it (`<ledger>.key`, made once, mode 0600), never in the database: an
HMAC of an address or a sha256 can be checked only by whoever holds the key, while a plain salted
hash stored beside its salt is reversed by hashing a list of addresses.

Entries (besides "kind" and "job", the receipt id of the erasure):
  messages  "mode", "messages": ids, "raw": HMACs of their raw sha256s, "blobs": ids of the blobs
            they used — one batch of `erase`
  person    "subject": HMAC of the address, "recipients": ids, "participant_tickets": ids,
            "contacts": ids — the rows naming them in mail they did not send
  spool     "raw": HMACs of the sha256s of spool entries removed
Every raw HMAC is also what the pipeline checks (`among`): the same mail fetched or imported
again is dropped, never stored as new.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SenderRule, TicketParticipant
from models.files import fsync_path
from tickets.store import MessageStore, Naming

log = logging.getLogger("postdesk.erasure")


def normalise_address(address: str) -> str:
    """The form an address is looked up, hashed and compared in: trimmed, without <>, lower-case."""
    return address.strip().strip("<>").strip().lower()


class ErasureLedger:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.key_path = self.path.with_suffix(".key")
        self._key: bytes | None = None
        self._raw: set[str] = set()  # raw HMACs read so far
        self._read_to = 0  # bytes of the file read into `_raw`

    def hmac(self, value: str) -> str:
        return hmac.new(self._the_key(), value.encode(), hashlib.sha256).hexdigest()

    def _the_key(self) -> bytes:
        if self._key is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
                    fh.flush()
                    os.fsync(fh.fileno())
                fsync_path(self.key_path.parent)
            self._key = bytes.fromhex(self.key_path.read_text().strip())
        return self._key

    def append(self, entry: dict) -> None:
        """Write one entry, durably, before the transaction it describes commits."""
        line = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_path(self.path.parent)

    def entries(self) -> Iterator[dict]:
        """Every entry, oldest first; a line cut short by a crash (its transaction never committed) is skipped."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    yield json.loads(line)
                except ValueError:
                    log.warning("erasure ledger line %d is cut short; skipped", number)

    def among(self, sha256s: Iterable[str]) -> set[str]:
        """Those of these raw sha256s an erasure removed (the pipeline drops such mail). Reads only
        what was appended since the last call."""
        self._catch_up()
        if not self._raw:
            return set()
        return {sha256 for sha256 in sha256s if self.hmac(sha256) in self._raw}

    def _catch_up(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self._read_to:  # replaced (restored): read it again
            self._raw, self._read_to = set(), 0
        if size == self._read_to:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._read_to)
            data = fh.read(size - self._read_to)
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        for line in complete.splitlines():
            try:
                self._raw.update(json.loads(line).get("raw", ()))
            except ValueError:
                continue
        self._read_to += len(complete)


def replay(ledger: ErasureLedger, store: MessageStore, session: Session) -> dict[str, int]:
    """Redo every erasure the ledger holds, in `session`'s transaction (after restoring a backup):
    what is already gone is skipped, so replaying twice changes nothing. Returns counts."""
    counts: dict[str, int] = {}

    def add(values: dict[str, int]) -> None:
        for name, value in values.items():
            counts[name] = counts.get(name, 0) + value

    for entry in ledger.entries():
        if entry.get("kind") == "messages":
            erased = store.erase(session, entry["messages"], shells=entry.get("mode") == "anonymise")
            add({name: value for name, value in vars(erased).items()})
        elif entry.get("kind") == "person":
            add(store.unname(session, _named_by(ledger, session, entry)))
    return counts


def _named_by(ledger: ErasureLedger, session: Session, entry: dict) -> Naming:
    """The rows a "person" entry removed, found again without the address: by id, or by the HMAC
    of the address among the participants of the tickets it names and the sender rules."""
    subject, tickets, participants = entry["subject"], entry.get("participant_tickets", []), []
    for i in range(0, len(tickets), 500):
        participants += [
            (t, a)
            for t, a in session.execute(
                select(TicketParticipant.ticket_id, TicketParticipant.address).where(
                    TicketParticipant.ticket_id.in_(tickets[i : i + 500])
                )
            )
            if ledger.hmac(a) == subject
        ]
    rules = [p for p in session.scalars(select(SenderRule.pattern)) if ledger.hmac(p) == subject]
    return Naming(entry.get("recipients", []), participants, entry.get("contacts", []), rules)
