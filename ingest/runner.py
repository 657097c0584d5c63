"""The runner: drains the spool into the database, a batch per transaction.

While one batch is in its transaction, the next is claimed and prepared (parsed and tokenized,
`ingest.prepare`), in a worker process when `runner_prepare_workers` > 0.
A batch commits as a whole; if it fails, its entries are retried one by one so a single bad
message cannot block the rest. A failure of the database itself (it is down, locked or
read-only) or of the disk (full, read-only) is not the message's fault: the entries go back
untouched, the runner logs the outage once and waits, so an outage makes the spool grow and
nothing lands in bad/.
"""

from __future__ import annotations

import errno
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from ingest.pipeline import Services, process_batch
from ingest.prepare import PrepareOptions, Prepared, Preparer, prepare
from ingest.spool import Entry, Spool
from ingest.startup_heap import freeze_startup_heap
from ingest.stop_signal import StopSignal
from models.db import Database

log = logging.getLogger("postdesk.runner")

# SQLite reports schema mistakes as OperationalError too; only these mean "the database is unavailable".
_SQLITE_UNAVAILABLE = ("database is locked", "readonly", "disk i/o error", "unable to open", "disk is full")
# A disk that is full or has gone read-only holds every message up alike: none of them is at fault.
_DISK_UNAVAILABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
MAX_BACKOFF = 10.0  # seconds between tries while an outage lasts, at most


def is_outage(exc: BaseException) -> bool:
    """The world is down (the database, or the disk for blobs and the spool): wait, count no attempt."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_UNAVAILABLE
    if isinstance(exc, DisconnectionError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        return any(text in str(exc.orig).lower() for text in _SQLITE_UNAVAILABLE)
    return True


def describe_outage(exc: BaseException) -> str:
    """One line for the log: the error's type and the first line of its text."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


@dataclass
class _Claimed:
    """A claimed batch and its preparation, under way."""

    entries: list[Entry]
    options: PrepareOptions
    prepared: Future


class Runner:
    def __init__(self, db: Database, spool: Spool, services: Services, preparer: Preparer | None = None):
        self.db = db
        self.spool = spool
        self.services = services
        self.settings = services.settings
        self.preparer = preparer or Preparer(0)
        self._backoff = 0.0
        self.stats = {"stored": 0, "duplicate": 0, "erased": 0, "bad": 0}
        self._forgetting: Future | None = None
        self._ahead: _Claimed | None = None
        self.outage: str | None = None  # what keeps the runner from storing, while it lasts
        self._outage_since = 0.0

    def run(self, stop: StopSignal) -> None:
        """Work until `stop` is set, finishing the batch in hand."""
        try:
            self.warm_up()
            while not stop.is_set():
                if self.step() == 0:  # busy: straight on to the next batch; idle or an outage: wait
                    stop.wait(self._backoff or self.settings.runner_poll_interval)
        finally:
            self.close()

    def warm_up(self) -> None:
        """Load the spam model and start the prepare workers before the first message, not with it."""
        if self.services.spam is not None:
            try:
                with self.db.read() as session:
                    self.services.spam.live.refresh(session)
            except Exception as exc:  # e.g. the database is down: the first batch tries again
                log.warning("spam model not loaded at start (%s)", type(exc).__name__)
        self.preparer.start()
        freeze_startup_heap()

    def step(self) -> int:
        """Commit one batch while the next one is prepared; returns how many entries were taken."""
        claimed, self._ahead = self._ahead or self._claim(), None
        if claimed is None:
            return 0
        entries = claimed.entries
        try:
            prepared = self.preparer.result(claimed.prepared, entries, claimed.options)
        except Exception:  # preparing never raises by design; if it did, find the culprit one by one
            log.exception("preparing a batch of %d failed; retrying one by one", len(entries))
            prepared = None
        self._ahead = self._claim()
        if prepared is None:
            return len(entries) if self._one_by_one(entries) else 0
        try:
            self._commit(prepared)
        except Exception as exc:
            if is_outage(exc):
                self._wait_for_outage(entries, exc)
                return 0
            log.warning("batch of %d failed (%s); retrying one by one", len(entries), type(exc).__name__)
            return len(entries) if self._one_by_one(entries) else 0
        return len(entries)

    def busy(self) -> bool:
        """Entries are waiting in the spool or claimed ahead."""
        return self._ahead is not None or bool(self.spool.pending(1))

    def drain(self, timeout: float | None = None) -> None:
        """Process until the spool is empty (for the CLI and tests), waiting out outages; a
        TimeoutError after `timeout` seconds with entries still waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self.busy():
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"spool not drained after {timeout} s: {self.spool.depth()}")
                if self.step() == 0 and self._backoff:
                    time.sleep(self._backoff)
        finally:
            self.close()

    def _claim(self) -> _Claimed | None:
        entries = self.spool.claim_batch(self.settings.runner_batch_size)
        if not entries:
            return None
        options = self.services.prepare_options()
        return _Claimed(entries, options, self.preparer.submit(entries, options))

    def _commit(self, prepared: list[Prepared]) -> None:
        # The store's blob batch closes inside: every blob file and folder is fsynced before the commit.
        with self.db.write() as session:
            outcomes = [ctx.outcome for ctx in process_batch(session, prepared, self.services)]
        self._outage_over()
        entries = [p.entry for p in prepared]
        self._forget(entries)
        for entry, outcome in zip(entries, outcomes, strict=True):
            self.stats[outcome] += 1
            log.info("entry %s %s", entry.id, outcome)
        log.debug("batch of %d committed; totals %s", len(entries), self.stats)
        self.db.bound_wal()

    def _forget(self, entries: list[Entry]) -> None:
        """Remove committed entries from the spool while the next batch is processed."""
        self.finish_removals()
        self._forgetting = self.spool.done_later(entries)

    def finish_removals(self) -> None:
        """Wait until the spool entries of committed batches are gone."""
        if self._forgetting is not None:
            self._forgetting.result()
            self._forgetting = None

    def close(self) -> None:
        """Put back a batch claimed ahead, wait for the spool, stop the workers."""
        self._release_ahead()
        self.finish_removals()
        self.preparer.close()

    def _release_ahead(self) -> None:
        claimed, self._ahead = self._ahead, None
        if claimed is not None:
            self._put_back(claimed.entries)

    def _put_back(self, entries: list[Entry]) -> None:
        """Untouched, in the files they came in, for a later batch: a rename, so it needs no disk space."""
        self.spool.put_back(entries)

    def _one_by_one(self, entries: list[Entry]) -> bool:
        """Store or fail each entry alone; False when an outage stopped it (the rest went back)."""
        try:
            self.spool.split(entries)  # from here on, each entry fails or waits alone
        except OSError as exc:
            if not is_outage(exc):
                raise
            self._wait_for_outage(entries, exc)
            return False
        for number, entry in enumerate(entries):
            if not self._one(entry):
                self._put_back(entries[number + 1 :])
                return False
        return True

    def _one(self, entry: Entry) -> bool:
        """Store one entry, or count its failure; False when an outage stopped it (it went back)."""
        try:
            self._commit([prepare(entry, self.services.prepare_options())])
        except Exception as exc:
            if is_outage(exc):
                self._wait_for_outage([entry], exc)
                return False
            try:
                where = self.spool.release(entry, f"{type(exc).__name__}: {exc}", self.settings.spool_max_attempts)
            except OSError as write_failed:  # recording the attempt needs the disk
                if not is_outage(write_failed):
                    raise
                self._wait_for_outage([entry], write_failed)
                return False
            self._outage_over()  # the world is up: this message failed
            log.exception("entry %s failed (attempt %d), back to %s", entry.id, entry.envelope.attempts, where)
            if where == "bad":
                self.stats["bad"] += 1
        return True

    def _wait_for_outage(self, entries: list[Entry], exc: BaseException) -> None:
        self._release_ahead()
        self._put_back(entries)
        self._backoff = min(max(self._backoff * 2, 0.5), MAX_BACKOFF)
        if self.outage is None:
            self.outage, self._outage_since = describe_outage(exc), time.monotonic()
            log.warning(
                "cannot store (%s); entries wait in the spool, trying again every %.0f s at most",
                self.outage,
                MAX_BACKOFF,
            )

    def _outage_over(self) -> None:
        self._backoff = 0.0
        if self.outage is not None:
            log.warning("storing again after %.0f s (%s)", time.monotonic() - self._outage_since, self.outage)
            self.outage = None
