"""The durable inbound queue: raw bytes on disk before anything is acknowledged.

Layout under the spool folder (the Maildir trick, as Mailman's switchboard does it):
  tmp/   being written; never read
  new/   durable, waiting: `<id>.eml` (raw bytes) and `<id>.json` (envelope sidecar)
  cur/   claimed by a runner; put back to new/ at the next start if the runner died
  bad/   failed too often; the sidecar holds the reason; `postdesk spool retry` puts it back

An entry exists once its `.eml` is in new/ (the sidecar is renamed in first), so a crash
between the two renames leaves a sidecar without mail, which `recover()` removes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

FOLDERS = ("tmp", "new", "cur", "bad")


class SpoolError(Exception):
    """The spool could not store or move an entry."""


@dataclass
class Envelope:
    """What the transport told us about a message, kept beside its bytes."""

    mail_from: str = ""
    rcpt_tos: list[str] = field(default_factory=list)
    source: str = "smtp"
    peer: str = ""
    received_at: float = field(default_factory=time.time)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Envelope":
        fields = json.loads(data)
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


@dataclass
class Entry:
    """A spool entry a runner holds: its id, raw bytes and envelope."""

    id: str
    raw: bytes
    envelope: Envelope


def new_id() -> str:
    """Ids sort by arrival time, so the runner works oldest first."""
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class Spool:
    """Crash-safe queue of raw messages in a folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def _dir(self, name: str) -> Path:
        return self.root / name

    def put(self, raw: bytes, envelope: Envelope) -> str:
        """Store `raw` durably and return its id; only after this returns may we say 250."""
        entry_id = new_id()
        tmp = self._dir("tmp")
        try:
            _write_durably(tmp / f"{entry_id}.json", envelope.to_json())
            _write_durably(tmp / f"{entry_id}.eml", raw)
            _fsync_dir(tmp)
            os.rename(tmp / f"{entry_id}.json", self._dir("new") / f"{entry_id}.json")
            os.rename(tmp / f"{entry_id}.eml", self._dir("new") / f"{entry_id}.eml")
            _fsync_dir(self._dir("new"))
        except OSError as exc:
            for suffix in (".json", ".eml"):
                (tmp / f"{entry_id}{suffix}").unlink(missing_ok=True)
            raise SpoolError(f"spool write failed: {exc.strerror or exc}") from exc
        return entry_id

    def pending(self, limit: int | None = None) -> list[str]:
        """Ids waiting in new/, oldest first."""
        ids = sorted(p.stem for p in self._dir("new").glob("*.eml"))
        return ids[:limit] if limit else ids

    def claim(self, entry_id: str) -> Entry | None:
        """Move an entry to cur/ and read it; None when another runner was faster."""
        try:
            os.rename(self._dir("new") / f"{entry_id}.eml", self._dir("cur") / f"{entry_id}.eml")
        except FileNotFoundError:
            return None
        os.rename(self._dir("new") / f"{entry_id}.json", self._dir("cur") / f"{entry_id}.json")
        return self._read("cur", entry_id)

    def _read(self, folder: str, entry_id: str) -> Entry:
        base = self._dir(folder) / entry_id
        raw = base.with_suffix(".eml").read_bytes()
        envelope = Envelope.from_json(base.with_suffix(".json").read_bytes())
        return Entry(entry_id, raw, envelope)

    def done(self, entry_id: str) -> None:
        """The entry is committed to the database: forget it."""
        for suffix in (".eml", ".json"):
            (self._dir("cur") / f"{entry_id}{suffix}").unlink(missing_ok=True)

    def release(self, entry: Entry, error: str | None, max_attempts: int) -> str:
        """Put a claimed entry back after a failure; returns "new" or "bad" (where it went)."""
        if error is not None:
            entry.envelope.attempts += 1
            entry.envelope.errors.append(error[:500])
        target = "bad" if entry.envelope.attempts >= max_attempts else "new"
        cur = self._dir("cur")
        _write_durably(cur / f"{entry.id}.json.tmp", entry.envelope.to_json())
        os.replace(cur / f"{entry.id}.json.tmp", cur / f"{entry.id}.json")
        os.rename(cur / f"{entry.id}.json", self._dir(target) / f"{entry.id}.json")
        os.rename(cur / f"{entry.id}.eml", self._dir(target) / f"{entry.id}.eml")
        return target

    def recover(self) -> int:
        """At start: put entries a dead runner held back in new/, drop half-written leftovers."""
        moved = 0
        for eml in self._dir("cur").glob("*.eml"):
            os.rename(eml.with_suffix(".json"), self._dir("new") / f"{eml.stem}.json")
            os.rename(eml, self._dir("new") / eml.name)
            moved += 1
        for folder in ("new", "cur"):
            for sidecar in self._dir(folder).glob("*.json"):
                if not sidecar.with_suffix(".eml").exists():
                    sidecar.unlink(missing_ok=True)
        cutoff = time.time() - 3600
        for leftover in self._dir("tmp").iterdir():
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
        return moved

    def bad(self) -> list[Entry]:
        return [self._read("bad", p.stem) for p in sorted(self._dir("bad").glob("*.eml"))]

    def retry(self, entry_id: str) -> None:
        """Give a bad entry a fresh set of attempts."""
        bad = self._dir("bad")
        if not (bad / f"{entry_id}.eml").exists():
            raise SpoolError(f"no entry {entry_id} in spool/bad")
        entry = self._read("bad", entry_id)
        entry.envelope.attempts = 0
        _write_durably(bad / f"{entry_id}.json", entry.envelope.to_json())
        os.rename(bad / f"{entry_id}.json", self._dir("new") / f"{entry_id}.json")
        os.rename(bad / f"{entry_id}.eml", self._dir("new") / f"{entry_id}.eml")

    def depth(self) -> dict[str, int]:
        return {name: sum(1 for _ in self._dir(name).glob("*.eml")) for name in ("new", "cur", "bad")}

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
