"""The runner: drains the spool into the database, a batch per transaction.

While one batch is in its transaction, the next is claimed and prepared (parsed and tokenized,
`ingest.prepare`), in a worker process when `runner_prepare_workers` > 0.
A batch commits as a whole; if it fails, its entries are retried one by one so a single bad
message cannot block the rest. A failure of the database itself (it is down, locked or
read-only) is not the message's fault: the entries go back untouched and the runner waits,
so an outage makes the spool grow and nothing lands in bad/.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from ingest.pipeline import Services, process_batch
from ingest.prepare import Prepared, PrepareOptions, Preparer, prepare
from ingest.spool import Entry, Spool
from models.db import Database
from postdesk import heap

log = logging.getLogger("postdesk.runner")

# SQLite reports schema mistakes as OperationalError too; only these mean "the database is unavailable".
_SQLITE_UNAVAILABLE = ("database is locked", "readonly", "disk i/o error", "unable to open", "disk is full")


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, DisconnectionError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        return any(text in str(exc.orig).lower() for text in _SQLITE_UNAVAILABLE)
    return True


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

    def run(self, stop: threading.Event, parent_pid: int | None = None) -> None:
        """Work until `stop` is set (or the parent process is gone), finishing the batch in hand."""
        try:
            self.warm_up()
            while not stop.is_set():
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("parent process gone; runner stops")
                    return
                if self.step() == 0:  # busy: straight on to the next batch; idle: wait
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
        heap.settle()

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
            self._one_by_one(entries)
            return len(entries)
        try:
            self._commit(prepared)
        except Exception as exc:
            if _is_outage(exc):
                self._wait_for_database(entries, exc)
                return 0
            log.warning("batch of %d failed (%s); retrying one by one", len(entries), type(exc).__name__)
            self._one_by_one(entries)
        self._backoff = 0.0
        return len(entries)

    def busy(self) -> bool:
        """Entries are waiting in the spool or claimed ahead."""
        return self._ahead is not None or bool(self.spool.pending(1))

    def drain(self) -> None:
        """Process until the spool is empty (for the CLI and tests)."""
        while self.busy():
            self.step()
            if self._backoff:
                time.sleep(self._backoff)
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
        entries = [p.entry for p in prepared]
        self._forget(entries)
        for entry, outcome in zip(entries, outcomes):
            self.stats[outcome] += 1
            log.info("entry %s %s", entry.id, outcome)
        log.debug("batch of %d committed; totals %s", len(entries), self.stats)

    def _forget(self, entries: list[Entry]) -> None:
        """Remove committed entries from the spool while the next batch is processed."""
        self.settle()
        self._forgetting = self.spool.done_later(entries)

    def settle(self) -> None:
        """Wait until the spool entries of committed batches are gone."""
        if self._forgetting is not None:
            self._forgetting.result()
            self._forgetting = None

    def close(self) -> None:
        """Put back a batch claimed ahead, wait for the spool, stop the workers."""
        self._release_ahead()
        self.settle()
        self.preparer.close()

    def _release_ahead(self) -> None:
        claimed, self._ahead = self._ahead, None
        if claimed is not None:
            self._put_back(claimed.entries)

    def _put_back(self, entries: list[Entry]) -> None:
        """Untouched, each in its own file (see `Spool.split`), for a later batch."""
        self.spool.split(entries)
        for entry in entries:
            self.spool.release(entry, None, self.settings.spool_max_attempts)

    def _one_by_one(self, entries: list[Entry]) -> None:
        self.spool.split(entries)  # from here on, each entry fails or waits alone
        for entry in entries:
            self._one(entry)

    def _one(self, entry: Entry) -> None:
        try:
            self._commit([prepare(entry, self.services.prepare_options())])
        except Exception as exc:
            if _is_outage(exc):
                self._wait_for_database([entry], exc)
                return
            where = self.spool.release(entry, f"{type(exc).__name__}: {exc}", self.settings.spool_max_attempts)
            log.exception("entry %s failed (attempt %d), back to %s", entry.id, entry.envelope.attempts, where)
            if where == "bad":
                self.stats["bad"] += 1

    def _wait_for_database(self, entries: list[Entry], exc: BaseException) -> None:
        self._release_ahead()
        self._put_back(entries)
        self._backoff = min(max(self._backoff * 2, 0.5), 10.0)
        log.warning("database unavailable (%s); %d entries wait, retry in %.1fs",
                    type(exc).__name__, len(entries), self._backoff)
