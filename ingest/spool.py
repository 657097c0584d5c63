"""The durable inbound queue: raw bytes on disk before anything is acknowledged.

Layout under the spool folder (the Maildir trick, as Mailman's switchboard does it):
  tmp/   being written; never read
  new/   durable, waiting, oldest first by name:
           `<id>.entry`      one message: its envelope as one line of JSON, then its raw bytes
           `<id>+<n>.group`  n messages the SMTP edge accepted together, one file for all of them:
                             each as its envelope line (with its id and size), then its raw bytes
  cur/   claimed by a runner; put back to new/ at the next start if the runner died
  bad/   failed too often; the envelope holds the reasons; `postdesk spool retry` puts it back.
         A file a runner cannot read (a damaged disk, a hand edit) lands here as `<name>.unreadable`,
         as it was, so the runner goes on with the others.

A file is written and fsynced in tmp/ and renamed into new/, so it appears whole or not at all;
files committed as a group share the fsync of new/ that makes their names durable.
A runner claims whole files. What it puts back untouched (an outage, shutting down) goes back as
it came, by renames only, so a full disk cannot stop it. Before entries are tried one by one (a
batch failed) it splits their groups into single entries, so from then on each entry fails,
waits or goes to bad/ alone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from models.files import GroupFsync, create_durably, fsync_path, write_durably
from models.mail.envelope import Envelope

FOLDERS = ("tmp", "new", "cur", "bad")
SUFFIX = ".entry"
GROUP_SUFFIX = ".group"
UNREADABLE = ".unreadable"

log = logging.getLogger("postdesk.spool")


class SpoolError(Exception):
    """The spool could not store or move an entry."""


@dataclass
class Entry:
    """A spool entry a runner holds: its id, raw bytes and envelope, and the file it is in."""

    id: str
    raw: bytes
    envelope: Envelope
    file: str = ""  # its own `<id>.entry` unless it came in a group

    def __post_init__(self) -> None:
        self.file = self.file or f"{self.id}{SUFFIX}"

    @property
    def grouped(self) -> bool:
        return self.file.endswith(GROUP_SUFFIX)


@dataclass
class Staged:
    """A put between its halves: the entry's id (arrival order), envelope and bytes."""

    id: str
    envelope: Envelope
    raw: bytes


_ID = re.compile(r"[0-9a-f]{1,20}-[0-9a-f]{8}")


def new_id() -> str:
    """Ids sort by arrival time, so the runner works oldest first.

    The random part only tells apart ids of the same nanosecond, so `random` will do: `secrets`
    makes a system call, and each one on the SMTP edge's event loop may hand the GIL over.
    """
    return f"{time.time_ns():x}-{random.getrandbits(32):08x}"


def _encode(envelope: Envelope, raw: bytes) -> bytes:
    return envelope.to_json() + b"\n" + raw


def _encode_group(group: list[Staged]) -> bytes:
    return b"".join(s.envelope.to_json(id=s.id, size=len(s.raw)) + b"\n" + s.raw for s in group)


def _file_name(group: list[Staged]) -> str:
    return f"{group[0].id}{SUFFIX}" if len(group) == 1 else f"{group[0].id}+{len(group)}{GROUP_SUFFIX}"


def _size(name: str) -> int:
    """How many entries a spool file holds, from its name."""
    return int(name[name.index("+") + 1 : -len(GROUP_SUFFIX)]) if name.endswith(GROUP_SUFFIX) else 1


def _file_of(name: str) -> str:
    """The file a name from `pending` stands for: only group names hold a "+"."""
    return f"{name}{GROUP_SUFFIX}" if "+" in name else f"{name}{SUFFIX}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _failed(exc: OSError) -> SpoolError:
    error = SpoolError(f"spool write failed: {exc.strerror or exc}")
    error.__cause__ = exc
    return error


def _load(folder: Path, name: str) -> list[Entry]:
    with open(folder / name, "rb") as fh:
        if not name.endswith(GROUP_SUFFIX):
            envelope = Envelope.from_json(fh.readline())
            return [Entry(name[: -len(SUFFIX)], fh.read(), envelope)]
        data = fh.read()
    entries, at = [], 0
    while at < len(data):
        end = data.index(b"\n", at)
        fields = json.loads(data[at:end])
        at = end + 1 + fields["size"]
        if at > len(data):
            raise ValueError(f"entry {fields['id']} is cut short")
        entries.append(Entry(fields["id"], data[end + 1 : at], Envelope.of(fields), name))
    return entries


class Spool:
    """Crash-safe queue of raw messages in a folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for name in FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        # Concurrent puts share the fsync of new/ that makes their renames durable.
        self._new_fsync = GroupFsync(self._dir("new"))
        # The SMTP edge's hot path joins strings: Path objects cost it time holding the GIL
        # (bench/results/smtp_edge.md).
        self._tmp_prefix, self._new_prefix = f"{self._dir('tmp')}{os.sep}", f"{self._dir('new')}{os.sep}"
        self._forgetter = ThreadPoolExecutor(1, thread_name_prefix="spool-done")  # starts on first use

    def _dir(self, name: str) -> Path:
        return self.root / name

    def _path(self, folder: str, entry_id: str) -> Path:
        return self.root / folder / f"{entry_id}{SUFFIX}"

    def put(self, raw: bytes, envelope: Envelope) -> str:
        """Store `raw` durably and return its id; only after this returns may we say 250."""
        staged = self.stage(raw, envelope)
        [error] = self.commit([staged])
        if error:
            raise error
        return staged.id

    def stage(self, raw: bytes, envelope: Envelope) -> Staged:
        """The first half of a put, without touching the disk."""
        return Staged(new_id(), envelope, raw)

    def commit(self, group: list[Staged]) -> list[SpoolError | None]:
        """The second half of puts: every entry of `group` durable in new/, in one file (a group
        when there are several); returns each one's error or None, the same for all of them.

        Creating a file cost more than writing and syncing its bytes (bench/results/smtp_edge.md):
        the edge's groups pay it once. A failure leaves no file behind:
        nothing of the group is acknowledged, so the senders will try again.
        """
        tmp, name = self._tmp_prefix + group[0].id, _file_name(group)
        data = _encode(group[0].envelope, group[0].raw) if len(group) == 1 else _encode_group(group)
        try:
            create_durably(tmp, data)
            os.rename(tmp, self._new_prefix + name)
            self._new_fsync.fsync()
        except OSError as exc:
            for path in (tmp, self._new_prefix + name):
                with suppress(OSError):
                    os.unlink(path)
            return [_failed(exc)] * len(group)
        return [None] * len(group)

    def pending(self, limit: int | None = None) -> list[str]:
        """Names of the files waiting in new/, oldest first (a single entry's name is its id)."""
        with os.scandir(self._dir("new")) as files:
            names = sorted(f.name.rpartition(".")[0] for f in files if f.name.endswith((SUFFIX, GROUP_SUFFIX)))
        return names[:limit] if limit else names

    def claim(self, name: str) -> list[Entry]:
        """Move a waiting file to cur/ and read its entries; none when another runner was faster."""
        file = _file_of(name)
        try:
            os.rename(self._dir("new") / file, self._dir("cur") / file)
        except FileNotFoundError:
            return []
        try:
            return _load(self._dir("cur"), file)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged JSON or framing
            log.error("spool file %s cannot be read (%s); moved to bad/ as it was", file, exc)
            os.rename(self._dir("cur") / file, self._dir("bad") / f"{file}{UNREADABLE}")
            return []

    def claim_batch(self, limit: int) -> list[Entry]:
        """Claim the oldest waiting files, up to about `limit` entries (groups are taken whole)."""
        entries: list[Entry] = []
        for name in self.pending(limit):
            entries += self.claim(name)
            if len(entries) >= limit:
                break
        return entries

    def waiting(self) -> list[Entry]:
        """Every entry waiting in new/, oldest first, without claiming any."""
        return [entry for name in self.pending() for entry in _load(self._dir("new"), _file_of(name))]

    def which(self, entry_ids: list[str], folders: tuple[str, ...]) -> list[str]:
        """Those of these single entries (`put`'s) whose file is in one of `folders`."""
        present = {name for folder in folders for name in os.listdir(self._dir(folder))}
        return [entry_id for entry_id in entry_ids if f"{entry_id}{SUFFIX}" in present]

    def done(self, entries: list[Entry]) -> None:
        """The entries are committed to the database: forget them (and the files holding them)."""
        for file in dict.fromkeys(entry.file for entry in entries):
            (self._dir("cur") / file).unlink(missing_ok=True)

    def done_later(self, entries: list[Entry]) -> Future:
        """`done` for a committed batch, off the caller's thread.

        Unlinking a file that was fsynced is slow enough to matter to the runner when done inline
        (bench/results/runner.md). Safe to lose: an entry left in cur/ after a crash is
        put back by `recover()` and then found a duplicate of what was committed.
        """
        return self._forgetter.submit(self.done, entries)

    def split(self, entries: list[Entry]) -> None:
        """Give each claimed entry that came in a group its own file in cur/, then drop the groups.

        A crash half-way leaves both, and both go back to new/: the copies are found duplicates.
        A failed write (a full disk) removes the singles written so far and raises: the groups are
        left whole, to be put back as they came.
        """
        grouped = [entry for entry in entries if entry.grouped]
        if not grouped:
            return
        try:
            for entry in grouped:
                write_durably(self._dir("tmp") / entry.id, _encode(entry.envelope, entry.raw))
                os.rename(self._dir("tmp") / entry.id, self._path("cur", entry.id))
            fsync_path(self._dir("cur"))
        except OSError:
            for entry in grouped:
                (self._dir("tmp") / entry.id).unlink(missing_ok=True)
                self._path("cur", entry.id).unlink(missing_ok=True)
            raise
        for file in dict.fromkeys(entry.file for entry in grouped):
            (self._dir("cur") / file).unlink(missing_ok=True)
        for entry in grouped:
            entry.file = f"{entry.id}{SUFFIX}"

    def put_back(self, entries: list[Entry]) -> None:
        """Return claimed entries to new/ untouched, in the files they came in (a group whole):
        renames only, so it works on a full disk."""
        for file in dict.fromkeys(entry.file for entry in entries):
            os.rename(self._dir("cur") / file, self._dir("new") / file)

    def release(self, entry: Entry, error: str | None, max_attempts: int) -> str:
        """Put a claimed single entry back after a failure (split groups first); returns "new" or
        "bad" (where it went)."""
        if entry.grouped:
            raise SpoolError(f"entry {entry.id} is still in a group: split it first")
        if error is not None:
            entry.envelope.attempts += 1
            entry.envelope.errors.append(error[:500])
            self._rewrite("cur", entry)
        target = "bad" if entry.envelope.attempts >= max_attempts else "new"
        os.rename(self._path("cur", entry.id), self._path(target, entry.id))
        return target

    def _rewrite(self, folder: str, entry: Entry) -> None:
        """Replace an entry's file with one holding its changed envelope, whole or not at all."""
        tmp = self._dir("tmp") / entry.id
        try:
            write_durably(tmp, _encode(entry.envelope, entry.raw))
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self._path(folder, entry.id))

    def recover(self) -> int:
        """At start: put files a dead runner held back in new/, drop half-written leftovers;
        returns how many entries came back."""
        moved = 0
        for held in os.listdir(self._dir("cur")):
            if held.endswith((SUFFIX, GROUP_SUFFIX)):
                os.rename(self._dir("cur") / held, self._dir("new") / held)
                moved += _size(held)
        cutoff = time.time() - 3600
        for leftover in self._dir("tmp").iterdir():
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
        return moved

    def bad(self) -> list[Entry]:
        """What failed too often, and unreadable files as entries named by their file (not retryable)."""
        entries = [entry for p in sorted(self._dir("bad").glob(f"*{SUFFIX}")) for entry in _load(p.parent, p.name)]
        for p in sorted(self._dir("bad").glob(f"*{UNREADABLE}")):
            envelope = Envelope(source="unknown", errors=["unreadable spool file, kept as it was found"])
            entries.append(Entry(p.name, p.read_bytes(), envelope, p.name))
        return entries

    def retry(self, entry_id: str) -> None:
        """Give a bad entry a fresh set of attempts."""
        if not _ID.fullmatch(entry_id):
            raise SpoolError(f"{entry_id!r} is not a spool id")
        if not self._path("bad", entry_id).exists():
            raise SpoolError(f"no entry {entry_id} in spool/bad")
        [entry] = _load(self._dir("bad"), f"{entry_id}{SUFFIX}")
        entry.envelope.attempts = 0
        self._rewrite("bad", entry)
        os.rename(self._path("bad", entry_id), self._path("new", entry_id))

    def everything(self) -> Iterator[Entry]:
        """Every entry in new/, cur/ and bad/, read without claiming (an unreadable or damaged file
        is one entry of its bytes, named by its file)."""
        for folder in ("new", "cur", "bad"):
            for path in sorted(self._dir(folder).iterdir()):
                if path.name.endswith((SUFFIX, GROUP_SUFFIX, UNREADABLE)):
                    yield from self._read_any(folder, path.name)

    def _read_any(self, folder: str, file: str) -> list[Entry]:
        path = self._dir(folder) / file
        try:
            if not file.endswith(UNREADABLE):
                return _load(self._dir(folder), file)
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError, AttributeError):  # damaged: judged by its bytes
            pass
        try:
            return [Entry(file, path.read_bytes(), Envelope(), file)]
        except FileNotFoundError:
            return []

    def purge(
        self, match: Callable[[Entry], bool], before: Callable[[list[Entry]], None], held_for: float = 600.0
    ) -> int:
        """Remove the entries `match` picks from new/, bad/ (an unreadable file is one entry of its
        bytes) and cur/; `before` is told of each file's picks first (an erasure records them).
        Every other entry of a file stays, as a single entry where it was. A file in new/ is
        claimed first, as a runner does; one in cur/ younger than `held_for` seconds is left to the
        runner holding it. A file in tmp/ older than that is a crash's leftover (a put never
        acknowledged, or a copy of an entry kept elsewhere) and goes whole when it holds a pick.
        Returns how many entries (files, in tmp/) went."""
        removed = 0
        for name in self.pending():
            file = _file_of(name)
            try:
                os.rename(self._dir("new") / file, self._dir("cur") / file)
            except FileNotFoundError:  # a runner was faster
                continue
            removed += self._purge_file("cur", file, match, before, back_to="new")
        cutoff = time.time() - held_for
        for path in sorted(self._dir("cur").glob("*")):
            if path.name.endswith((SUFFIX, GROUP_SUFFIX)) and _mtime(path) < cutoff:
                removed += self._purge_file("cur", path.name, match, before, back_to="cur")
        for path in sorted(self._dir("bad").glob("*")):
            removed += self._purge_file("bad", path.name, match, before, back_to="bad")
        for path in sorted(self._dir("tmp").glob("*")):  # a crash's leftovers: never acknowledged, or copies
            if _mtime(path) < cutoff and match(entry := Entry(path.name, path.read_bytes(), Envelope(), path.name)):
                before([entry])
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _purge_file(self, folder: str, file: str, match, before, back_to: str) -> int:
        path = self._dir(folder) / file
        entries = self._read_any(folder, file)
        if not entries:
            return 0
        picked = [entry for entry in entries if match(entry)]
        if not picked:
            if folder != back_to:
                os.rename(path, self._dir(back_to) / file)
            return 0
        before(picked)
        gone = {id(entry) for entry in picked}
        for entry in entries:
            if id(entry) not in gone:  # kept, in a file of its own
                write_durably(self._dir("tmp") / entry.id, _encode(entry.envelope, entry.raw))
                os.rename(self._dir("tmp") / entry.id, self._path(back_to, entry.id))
        fsync_path(self._dir(back_to))
        path.unlink(missing_ok=True)
        return len(picked)

    def depth(self) -> dict[str, int]:
        """Entries per folder (a group counts as its entries)."""
        return {
            folder: sum(
                _size(name)
                for name in os.listdir(self._dir(folder))
                if name.endswith((SUFFIX, GROUP_SUFFIX, UNREADABLE))
            )
            for folder in ("new", "cur", "bad")
        }

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
