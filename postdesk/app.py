"""Wiring: builds the services from the settings and runs them together for `postdesk serve`.

The SMTP server (and IMAP pollers) run in the main process; the runner runs in a child
process so parsing and storing use the second core. SIGTERM or Ctrl-C: stop accepting,
let the runner finish the batch in hand, exit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from classifier.live import LiveModel
from ingest.mailboxes import MailboxDirectory
from ingest.parse import silence_mailparser
from ingest.spool import Spool
from models.blobstore import BlobStore
from models.db import Database
from postdesk import heap
from postdesk.secret import server_secret
from postdesk.settings import Settings
from tickets.service import sync_mailboxes
from tickets.signing import MessageIdSigner
from tickets.store import MessageStore

if TYPE_CHECKING:  # the pipeline, runner, SMTP and IMAP load where used: reading commands start without them
    from ingest.pipeline import Services
    from ingest.runner import Runner
    from retention.erasure import Eraser
    from retention.ledger import ErasureLedger

log = logging.getLogger("postdesk")


@dataclass
class App:
    settings: Settings
    db: Database
    spool: Spool
    blobs: BlobStore
    directory: MailboxDirectory
    store: MessageStore

    @classmethod
    def open(cls, settings: Settings, migrate: bool = True) -> "App":
        silence_mailparser()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.sqlalchemy_url, settings.sqlite_busy_timeout)
        if migrate:
            db.migrate()
        blobs = BlobStore(settings.blob_dir)
        return cls(settings, db, Spool(settings.spool_dir), blobs, MailboxDirectory(settings.mailboxes),
                   MessageStore(blobs, spam_dir=settings.spam_dir))

    def services(self) -> Services:
        from classifier.judge import SpamJudge
        from ingest.pipeline import Services

        with self.db.write() as session:
            mailbox_ids = sync_mailboxes(session, self.settings.mailboxes)
        signer = MessageIdSigner(server_secret(self.settings), self.settings.smtp_hostname)
        judge = SpamJudge(self.live_model(), self.settings.spam_allow, self.settings.spam_block)
        return Services(self.settings, self.store, signer, self.directory, mailbox_ids, judge, self.erasure_ledger())

    def erasure_ledger(self) -> ErasureLedger:
        from retention.ledger import ErasureLedger

        return ErasureLedger(self.settings.erasure_ledger_path)

    def eraser(self) -> Eraser:
        """A person's erasure, wired to the store, the spool, the erasure ledger and the IMAP accounts."""
        from retention.erasure import Eraser

        return Eraser(self.db, self.store, self.spool, self.erasure_ledger(), list(self.settings.imap_accounts))

    def live_model(self) -> LiveModel:
        s = self.settings
        return LiveModel(s.spam_dir, ham_cutoff=s.spam_ham_cutoff, spam_cutoff=s.spam_spam_cutoff,
                         max_tokens=s.spam_max_tokens)

    def runner(self) -> Runner:
        from ingest.prepare import Preparer
        from ingest.runner import Runner

        return Runner(self.db, self.spool, self.services(), Preparer(self.settings.runner_prepare_workers))


def configure_logging(settings: Settings) -> None:
    """Postdesk's own loggers (`postdesk.*`, which log ids, counts and hashes) at the configured
    level; every other library's at WARNING at most: at INFO and DEBUG SQLAlchemy logs statements
    with their parameters, imapclient the IMAP conversation, aiosmtpd each command line — personal
    data a log must not hold."""
    level = logging.getLevelName(settings.log_level)
    logging.basicConfig(level=max(level, logging.WARNING), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("postdesk").setLevel(level)


def _runner_process(settings_data: dict, stop: multiprocessing.Event, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(**settings_data)
    configure_logging(settings)
    app = App.open(settings, migrate=False)
    app.runner().run(stop, parent_pid=parent_pid)


_SPAWN = multiprocessing.get_context("spawn")


class RunnerKeeper:
    """Keeps the runner process running: starts it again when it dies, after a pause that doubles
    (1 s up to `MAX_PAUSE`) while it keeps dying within `SETTLED` seconds of its start. A runner that
    cannot start at all (its database gone, say) then costs a start a minute, not a core and a log
    line every half second. Before a new start, what the dead one held in spool/cur goes back to new/."""

    SETTLED = 60.0
    MAX_PAUSE = 60.0

    def __init__(self, settings: Settings, spool: Spool, stop):
        self.settings, self.spool, self.stop = settings, spool, stop
        self.pause = 0.0
        self._restart_at: float | None = None
        self._start()

    def _start(self) -> None:
        self.process = _SPAWN.Process(target=_runner_process, name="postdesk-runner",
                                      args=(self.settings.model_dump(), self.stop, os.getpid()))
        self.process.start()
        self._started = time.monotonic()
        self._restart_at = None

    def check(self) -> None:
        """Call now and then: notices a dead runner, and starts a new one once its pause is over."""
        if self._restart_at is None and not self.process.is_alive():
            lived = time.monotonic() - self._started
            self.pause = 1.0 if lived >= self.SETTLED else min(max(self.pause * 2, 1.0), self.MAX_PAUSE)
            self._restart_at = time.monotonic() + self.pause
            log.error("runner exited (code %s) after %.0f s; starting it again in %.0f s",
                      self.process.exitcode, lived, self.pause)
        elif self._restart_at is not None and time.monotonic() >= self._restart_at:
            if moved := self.spool.recover():
                log.info("%d spool entries the runner held go back to the queue", moved)
            self._start()

    def join(self, timeout: float) -> None:
        self.process.join(timeout=timeout)


def serve(settings: Settings, on_ready=print) -> None:
    """Run everything until SIGTERM or Ctrl-C."""
    from ingest.imap import start_pollers
    from ingest.smtp import SmtpServer

    app = App.open(settings)
    app.services()  # mailbox rows exist before the first message arrives
    moved = app.spool.recover()
    if moved:
        log.info("recovered %d spool entries from an earlier run", moved)
    swept = app.store.sweep(app.db)
    if swept["temporary"] or swept["removed"]:
        log.info("removed %d half-written blob files and %d blobs nothing counts, left by an earlier run",
                 swept["temporary"], swept["removed"])
    if swept["missing"]:
        log.error("%d blob files the database counts are missing (restore them from a backup)", swept["missing"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner_stop = _SPAWN.Event()
    runner = RunnerKeeper(settings, app.spool, runner_stop)
    smtp = SmtpServer(settings, app.spool, app.directory)
    port = smtp.start()
    pollers = start_pollers(settings.imap_accounts, app.spool, settings.data_dir, stop)
    heap.settle()
    on_ready(port, app)
    try:
        while not stop.wait(0.5):
            runner.check()
    finally:
        smtp.stop()
        stop.set()
        for poller in pollers:
            poller.join(timeout=30)
        runner_stop.set()
        runner.join(timeout=60)
        app.db.dispose()
        log.info("stopped")
