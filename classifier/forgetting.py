"""Forgetting learned messages for good: no count, row or file keeps anything learned from them.

Unlearning (`ledger.unlearn`) appends a -1 event holding the message's features, and every saved
version still counts what it learned before its snapshot. Forgetting, for an erasure:
- every saved version whose snapshot covers some of their events gets its counts recomputed
  without them (each such event undone exactly: a version is the net of the events up to its
  `last_event_id`), written under a new file name; the old files go after the commit, the new
  ones if the transaction rolls back;
- their ledger rows and every event of theirs are deleted, so no features of theirs remain;
- one `RELOAD` event (no features) tells every `LiveModel` to load its version again and replay
  the events after it, which no longer hold theirs: the live model in every process then equals,
  count for count, one that never learned them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import CursorResult, delete, event, select
from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.ledger import serialise_writers
from classifier.model import CountModel
from models import SpamEvent, SpamLabel, SpamModelVersion
from models.base import utcnow

RELOAD = ":reload"  # the key of an event that makes every live model load its version again
_CHUNK = 500
_OLD_FILES = "postdesk.forgotten_snapshots"

log = logging.getLogger("postdesk.spam")


@dataclass
class Forgotten:
    labels: int = 0  # ledger rows deleted: messages that were learned
    events: int = 0
    versions: int = 0  # snapshots rewritten


@dataclass(frozen=True)
class _Event:
    id: int
    delta: int
    label: str
    features: bytes


def forget(session: Session, spam_dir: Path | None, keys: Iterable[str]) -> Forgotten:
    """Forget the ledger keys `keys` in the live model, every saved version, and the rows, in
    `session`'s transaction (see the module docstring)."""
    keys = sorted(set(keys))
    serialise_writers(session)
    events: list[_Event] = []
    labels = 0
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        events += [
            _Event(*row)
            for row in session.execute(
                select(SpamEvent.id, SpamEvent.delta, SpamEvent.label, SpamEvent.features).where(
                    SpamEvent.key.in_(chunk), SpamEvent.delta != 0
                )
            )
        ]
        labels += cast(CursorResult, session.execute(delete(SpamLabel).where(SpamLabel.key.in_(chunk)))).rowcount
    if not events and not labels:
        return Forgotten()
    versions = _rewrite_versions(session, spam_dir, events)
    for i in range(0, len(keys), _CHUNK):
        session.execute(delete(SpamEvent).where(SpamEvent.key.in_(keys[i : i + _CHUNK])))
    session.add(SpamEvent(delta=0, label="", features=b"", key=RELOAD, at=utcnow()))
    session.flush()
    return Forgotten(labels, len(events), versions)


def _rewrite_versions(session: Session, spam_dir: Path | None, events: list[_Event]) -> int:
    rewritten = 0
    for version in session.scalars(select(SpamModelVersion).order_by(SpamModelVersion.id)):
        covered = [e for e in events if e.id <= version.last_event_id]
        if not covered:
            continue
        if spam_dir is None:
            raise ValueError(
                f"spam model version {version.id} learned these messages: the folder of its files is needed"
            )
        spam_dir = Path(spam_dir)
        model = CountModel.load(spam_dir / version.path)
        _undo(model, covered)
        old, version.path = version.path, f"v{version.id:05d}-{int(time.time())}-{secrets.token_hex(3)}"
        _on_outcome(session, spam_dir, old, version.path)
        model.save(spam_dir / version.path)
        rewritten += 1
    return rewritten


def _undo(model: CountModel, events: list[_Event]) -> None:
    """Take these events back out of the counts: the -1s first (learned again), so that undoing
    the +1s (unlearning) never goes below what the snapshot holds."""
    for e in sorted(events, key=lambda e: e.delta):
        features = Features.from_bytes(e.features)
        (model.learn if e.delta < 0 else model.unlearn)(features, e.label)


def _on_outcome(session: Session, spam_dir: Path, old: str, new: str) -> None:
    """After the commit the old snapshot goes; after a rollback the new one."""
    files = session.info.get(_OLD_FILES)
    if files is None:
        files = session.info[_OLD_FILES] = {"old": [], "new": []}
        event.listen(session, "after_commit", lambda s: _remove(spam_dir, s.info[_OLD_FILES], "old"))
        event.listen(session, "after_rollback", lambda s: _remove(spam_dir, s.info[_OLD_FILES], "new"))
    files["old"].append(old)
    files["new"].append(new)


def _remove(spam_dir: Path, files: dict[str, list[str]], which: str) -> None:
    for stem in files[which]:
        for suffix in (".npz", ".json"):
            (spam_dir / f"{stem}{suffix}").unlink(missing_ok=True)
    files["old"], files["new"] = [], []


def sweep_snapshots(session: Session, spam_dir: Path) -> int:
    """Remove the snapshot files no version names (a crash between a forgetting's commit and its
    unlinks left them); how many. Holding the spam writers' lock in a write transaction, so no
    version is being saved meanwhile (a new version's files exist before its row is committed)."""
    serialise_writers(session)
    named = set(session.scalars(select(SpamModelVersion.path)))
    spam_dir = Path(spam_dir)
    stray = [
        p
        for p in (spam_dir.iterdir() if spam_dir.is_dir() else ())
        if p.name.endswith((".npz", ".json", ".tmp")) and p.name.split(".")[0] not in named
    ]
    for path in stray:
        path.unlink(missing_ok=True)
    return len(stray)
