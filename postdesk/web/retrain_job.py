"""Retraining the spam filter from the web view: one background thread at a time, whose progress
the spam page shows (it reloads itself while the job runs), so no request waits for it.

The job lives in this process: a page served by another `postdesk web` process does not see it.
The cross-validation runs outside any transaction (`classifier.versions.retrain_in_steps`), so
mail and agents' clicks are stored meanwhile.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from collections.abc import Callable

from classifier import versions
from classifier.filter import SpamFilter
from models.db import Database
from retention.audit import record

log = logging.getLogger("postdesk.web")


@dataclass
class RetrainJob:
    actor: str
    started_at: datetime
    step: str = "starting"
    progress: float = 0.0  # 0 to 1
    version_id: int | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.version_id is None and self.error is None


class Busy(Exception):
    """A retrain is running already."""


class Retrainer:
    def __init__(self, db: Database, spam_dir: Path, spam_filter: SpamFilter, now: Callable[[], datetime]):
        self.db, self.spam_dir, self.spam_filter, self.now = db, spam_dir, spam_filter, now
        self._lock = threading.Lock()
        self.job: RetrainJob | None = None  # the running one, or the last one

    def start(self, actor: str, note: str) -> RetrainJob:
        with self._lock:
            if self.job is not None and self.job.running:
                raise Busy()
            self.job = job = RetrainJob(actor, self.now())
            threading.Thread(target=self._run, args=(job, note), name="postdesk-retrain", daemon=True).start()
        return job

    def seen(self) -> RetrainJob | None:
        """The job as it is now (a copy: the thread goes on changing the job itself)."""
        job = self.job
        return replace(job) if job is not None else None

    def _run(self, job: RetrainJob, note: str) -> None:
        def progress(step: str, done: float) -> None:
            job.step, job.progress = step, done

        def audited(session, version) -> None:
            record(session, job.actor, "spam-retrain", "", {"version": version.id})

        try:
            version = versions.retrain_in_steps(self.db, self.spam_dir, self.spam_filter, note, progress, audited)
        except versions.LedgerChanged as exc:
            job.error = str(exc)
        except Exception:  # the page says it failed; the log has the why
            log.exception("retraining the spam filter failed")
            job.error = "the retrain failed (the server log says why)"
        else:
            job.version_id = version.id
