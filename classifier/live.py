"""The model a process scores with: the active version's snapshot plus every event logged after it.

`refresh` is cheap when nothing changed (two small queries), so the runner calls it once per batch;
an agent's click in the web view or a `postdesk spam learn` in another process is then in the
scores of the next batch, with no restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.filter import SpamFilter
from classifier.model import CountModel, ModelError
from models import SpamEvent, SpamModelVersion

log = logging.getLogger("postdesk.spam")


def active_version(session: Session) -> SpamModelVersion | None:
    return session.scalar(select(SpamModelVersion).where(SpamModelVersion.active.is_(True)))


class LiveModel:
    def __init__(self, spam_dir: Path, *, ham_cutoff: float, spam_cutoff: float, max_tokens: int):
        self.spam_dir = Path(spam_dir)
        self.filter = SpamFilter(ham_cutoff=ham_cutoff, spam_cutoff=spam_cutoff, max_tokens=max_tokens)
        self.version_id: int | None = None
        self.cursor = 0

    def refresh(self, session: Session) -> None:
        """Catch up with the active version and the event log."""
        version = active_version(session)
        if (version.id if version else None) != self.version_id:
            self._load(version)
        events = session.execute(
            select(SpamEvent.id, SpamEvent.delta, SpamEvent.label, SpamEvent.features)
            .where(SpamEvent.id > self.cursor).order_by(SpamEvent.id)
        )
        for event_id, delta, label, data in events:
            self._apply(delta, label, Features.from_bytes(data))
            self.cursor = event_id

    def _load(self, version: SpamModelVersion | None) -> None:
        self.version_id = version.id if version else None
        try:
            self.filter.model = CountModel.load(self.spam_dir / version.path) if version else CountModel()
            self.cursor = version.last_event_id if version else 0
            log.info("spam model version %s loaded", self.version_id)
        except (ModelError, OSError, ValueError) as exc:
            # An unreadable snapshot (say, from an older Postdesk): rebuild from the whole event log,
            # which holds every learn and unlearn, and say how to get a snapshot again.
            self.filter.model, self.cursor = CountModel(), 0
            log.error("spam model version %s could not be loaded (%s); replaying every label instead", self.version_id, exc)

    def _apply(self, delta: int, label: str, features: Features) -> None:
        try:
            (self.filter.model.learn if delta > 0 else self.filter.model.unlearn)(features, label)
        except ModelError:
            log.error("spam event could not be applied (%s %s); model left as it was", delta, label)
