"""The model a process scores with: the active version's snapshot plus every event logged after it.

`refresh` is cheap when nothing changed (three small queries), so the runner calls it once per batch;
an agent's click in the web view or a `postdesk spam learn` in another process is then in the
scores of the next batch, with no restart. After an erasure forgot messages (`classifier.forgetting`:
their events deleted, the versions rewritten under new file names, a reload event logged) the
model is loaded again from the snapshot, so it holds nothing of theirs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.filter import SpamFilter
from classifier.forgetting import RELOAD
from classifier.model import CountModel, ModelError
from models import SpamEvent, SpamModelVersion
from models.base import table

log = logging.getLogger("postdesk.spam")


def active_version(session: Session) -> SpamModelVersion | None:
    return session.scalar(select(SpamModelVersion).where(SpamModelVersion.active.is_(True)))


# What `refresh` reads once a batch, as Core statements built once: the session runs them without
# the ORM's work around each call, which weighs when batches are small (bench/results/runner.md).
_VERSIONS, _EVENTS = table(SpamModelVersion), table(SpamEvent)
_ACTIVE = select(_VERSIONS.c.id, _VERSIONS.c.path, _VERSIONS.c.last_event_id).where(_VERSIONS.c.active.is_(True))
_LAST_RELOAD = select(func.max(_EVENTS.c.id)).where(_EVENTS.c.key == RELOAD)
_EVENTS_AFTER = (
    select(_EVENTS.c.id, _EVENTS.c.delta, _EVENTS.c.label, _EVENTS.c.features)
    .where(_EVENTS.c.id > bindparam("cursor"))
    .order_by(_EVENTS.c.id)
)


class LiveModel:
    def __init__(self, spam_dir: Path, *, ham_cutoff: float, spam_cutoff: float, max_tokens: int):
        self.spam_dir = Path(spam_dir)
        self.filter = SpamFilter(ham_cutoff=ham_cutoff, spam_cutoff=spam_cutoff, max_tokens=max_tokens)
        self.version_id: int | None = None
        self.loaded: tuple | None = None  # (version id, its file, the last reload event) loaded from
        self.cursor = 0

    def refresh(self, session: Session) -> None:
        """Catch up with the active version and the event log."""
        version = session.execute(_ACTIVE).first()
        reload = session.scalar(_LAST_RELOAD)
        wanted = (version.id if version else None, version.path if version else None, reload)
        if wanted != self.loaded and not self._load(version, wanted):
            return
        events = session.execute(_EVENTS_AFTER, {"cursor": self.cursor})
        for event_id, delta, label, data in events:
            if delta:  # 0: a reload event, already followed above
                self._apply(delta, label, Features.from_bytes(data))
            self.cursor = event_id

    def _load(self, version: Row | None, wanted: tuple) -> bool:
        if version is None:
            self.filter.model, self.cursor = CountModel(), 0
        else:
            if not self._load_snapshot(version):
                return False
            log.info("spam model version %s loaded", wanted[0])
        self.version_id, self.loaded = wanted[0], wanted
        return True

    def _load_snapshot(self, version: Row) -> bool:
        try:
            self.filter.model = CountModel.load(self.spam_dir / version.path)
            self.cursor = version.last_event_id
        except FileNotFoundError:
            if self.loaded is None:
                self._replay_everything(version, "its snapshot is missing")
            else:
                # An erasure replaced this snapshot after this transaction began: the next refresh loads the new one.
                log.info("spam model version %s was rewritten meanwhile; loading it at the next refresh", version.id)
                return False
        except (ModelError, OSError, ValueError) as exc:
            self._replay_everything(version, str(exc))
        return True

    def _replay_everything(self, version: Row, why: str) -> None:
        """An unreadable snapshot (say, from an older Postdesk): rebuild from the whole event log,
        which holds every learn and unlearn, and say how to get a snapshot again."""
        self.filter.model, self.cursor = CountModel(), 0
        log.error("spam model version %s could not be loaded (%s); replaying every label instead", version.id, why)

    def _apply(self, delta: int, label: str, features: Features) -> None:
        try:
            (self.filter.model.learn if delta > 0 else self.filter.model.unlearn)(features, label)
        except ModelError:
            log.error("spam event could not be applied (%s %s); model left as it was", delta, label)
