"""Wiring: builds the services from the settings and runs them together for `postdesk serve`.

The SMTP server (and IMAP pollers) run in the main process; the runner runs in a child
process so parsing and storing use the second core; the daily jobs (retention) start at their
time in processes of their own (`postdesk.daily`). SIGTERM or Ctrl-C: stop accepting,
let the runner finish the batch in hand, exit within `stop_timeout` seconds whatever the
runner does. The runner is told to stop by a signal, not by anything shared it could leave locked
when it dies, and it dies with `serve` (`ingest.child_process`).
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
from ingest.spool import Spool
from ingest.startup_heap import freeze_startup_heap
from models.blobstore import BlobStore
from models.db import Database
from models.mail.parse import silence_mailparser
from models.settings import Settings
from postdesk.secret import server_secret
from postdesk.stop_flag import StopFlag
from postdesk.web.server import WebServer
from tickets.mailbox_rows import sync_mailboxes
from tickets.signing import MessageIdSigner
from tickets.store import MessageStore

if TYPE_CHECKING:  # the pipeline, runner, SMTP and IMAP load where used: reading commands start without them
    from ingest.outbound import OutboxSender
    from ingest.pipeline import Services
    from ingest.runner import Runner
    from retention.erasure import Eraser
    from retention.ledger import ErasureLedger
    from retention.runs import Retention

log = logging.getLogger("postdesk")


@dataclass
class App:
    settings: Settings
    db: Database
    spool: Spool
    blobs: BlobStore
    directory: MailboxDirectory
    store: MessageStore
    web_url: str = ""  # set by serve once the web view listens

    @classmethod
    def open(cls, settings: Settings, migrate: bool = True) -> App:
        silence_mailparser()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.sqlalchemy_url, settings.sqlite_busy_timeout)
        if migrate:
            db.migrate()
        blobs = BlobStore(settings.blob_dir)
        return cls(
            settings,
            db,
            Spool(settings.spool_dir),
            blobs,
            MailboxDirectory(settings.mailboxes),
            MessageStore(blobs, spam_dir=settings.spam_dir),
        )

    def services(self) -> Services:
        from classifier.judge import SpamJudge
        from ingest.pipeline import Services

        with self.db.write() as session:
            mailbox_ids = sync_mailboxes(session, self.settings.mailboxes)
        signer = self.signer()
        judge = SpamJudge(self.live_model(), self.settings.spam_allow, self.settings.spam_block)
        return Services(self.settings, self.store, signer, self.directory, mailbox_ids, judge, self.erasure_ledger())

    def signer(self) -> MessageIdSigner:
        return MessageIdSigner(server_secret(self.settings), self.settings.smtp_hostname)

    def outbox_sender(self) -> OutboxSender | None:
        """The outbox's sender, wired to the relay in the settings; None when no relay is set."""
        from ingest.outbound import OutboxSender
        from ingest.relay import Relay

        s = self.settings
        if not s.relay_host:
            return None
        relay = Relay(
            s.relay_host,
            s.relay_port,
            s.relay_security,
            s.relay_username,
            s.relay_password,
            s.relay_ca_file,
            s.relay_timeout,
            s.smtp_hostname,
        )
        return OutboxSender(self.db, relay, retry_seconds=s.outbox_retry_seconds, max_attempts=s.outbox_max_attempts)

    def erasure_ledger(self) -> ErasureLedger:
        from retention.ledger import ErasureLedger

        return ErasureLedger(self.settings.erasure_ledger_path)

    def eraser(self) -> Eraser:
        """A person's erasure, wired to the store, the spool, the erasure ledger and the IMAP accounts."""
        from retention.erasure import Eraser

        return Eraser(self.db, self.store, self.spool, self.erasure_ledger(), list(self.settings.imap_accounts))

    def retention(self, clock=None) -> Retention:
        """The retention rules with the policy the settings give (`clock`: a test's fake time)."""
        from models.base import utcnow
        from retention.rules import Policy
        from retention.runs import Retention

        s = self.settings
        policy = Policy(
            spam_days=s.retention_spam_days,
            automatic_days=s.retention_automatic_days,
            trash_days=s.retention_trash_days,
            closed_days=s.retention_closed_days,
            closed_mode=s.retention_closed_mode,
            attachment_days=s.retention_attachment_days,
            raw_mail_days=s.retention_raw_mail_days,
            contacts=s.retention_contacts,
        )
        return Retention(self.db, self.store, policy, clock=clock or utcnow)

    def services_once_reachable(self, stop: StopFlag) -> Services | None:
        """Migrate and build the services as soon as the database answers (None if stopped first).
        An unreachable database is logged once, then tried again after pauses growing to MAX_BACKOFF."""
        from ingest.runner import MAX_BACKOFF, describe_outage, is_outage

        pause, since = 0.5, None
        while not stop.is_set():
            try:
                self.db.migrate()
                services = self.services()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if since is None:
                    since = time.monotonic()
                    log.warning("database unavailable at start (%s); mail waits in the spool", describe_outage(exc))
                stop.wait(pause)
                pause = min(pause * 2, MAX_BACKOFF)
                continue
            if since is not None:
                log.warning("database reachable after %.0f s; the runner starts", time.monotonic() - since)
            return services
        return None

    def sweep_blobs(self) -> None:
        """Blob files and rows a crash left (between a commit and its unlinks, or mid-write): the
        runner sweeps once the database answers, before it stores anything."""
        try:
            swept = self.store.sweep(self.db)
        except Exception:  # leftovers wait for the next start or `postdesk blobs sweep`; mail must not
            log.exception("sweeping the blob files failed; the runner starts all the same")
            return
        if swept["temporary"] or swept["removed"]:
            log.info(
                "removed %d half-written blob files and %d blobs nothing counts, left by an earlier run",
                swept["temporary"],
                swept["removed"],
            )
        if swept["missing"]:
            log.error("%d blob files the database counts are missing (restore them from a backup)", swept["missing"])

    def live_model(self) -> LiveModel:
        s = self.settings
        return LiveModel(
            s.spam_dir, ham_cutoff=s.spam_ham_cutoff, spam_cutoff=s.spam_spam_cutoff, max_tokens=s.spam_max_tokens
        )

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


def _runner_process(settings_data: dict, serve_pid: int) -> None:
    from ingest.child_process import die_with_parent
    from ingest.prepare import Preparer
    from ingest.runner import Runner

    die_with_parent(serve_pid)
    stop = StopFlag()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(**settings_data)
    configure_logging(settings)
    app = App.open(settings, migrate=False)
    try:
        services = app.services_once_reachable(stop)
        if services is not None:
            app.sweep_blobs()
            Runner(app.db, app.spool, services, Preparer(settings.runner_prepare_workers)).run(stop)
    finally:
        app.db.dispose()


SCHEMA_WAIT = 30.0


def _wait_for_schema(db: Database, stop: StopFlag) -> None:
    """Up to `SCHEMA_WAIT` seconds for the runner to bring the schema up to date, so that the
    commands the banner suggests answer once it is printed. A database that does not answer by
    then is the runner's to wait for (and the banner says so); mail waits in the spool."""
    deadline = time.monotonic() + SCHEMA_WAIT
    while not db.schema_is_current() and time.monotonic() < deadline and not stop.wait(0.1):
        pass


_SPAWN = multiprocessing.get_context("spawn")


class RunnerKeeper:
    """Keeps the runner process running: starts it again when it dies, after a pause that doubles
    (1 s up to `MAX_PAUSE`) while it keeps dying within `SETTLED` seconds of its start. A runner that
    cannot start at all then costs a start a minute, not a core and a log line every half second.
    Before a new start, what the dead one held in spool/cur goes back to new/."""

    SETTLED = 60.0
    MAX_PAUSE = 60.0

    def __init__(self, settings: Settings, spool: Spool):
        self.settings, self.spool = settings, spool
        self.pause = 0.0
        self._restart_at: float | None = None
        self._start()

    def _start(self) -> None:
        self.process = _SPAWN.Process(
            target=_runner_process, name="postdesk-runner", args=(self.settings.model_dump(), os.getpid())
        )
        self.process.start()
        self._started = time.monotonic()
        self._restart_at = None

    def check(self) -> None:
        """Call now and then: notices a dead runner, and starts a new one once its pause is over."""
        if self._restart_at is None and not self.process.is_alive():
            lived = time.monotonic() - self._started
            self.pause = 1.0 if lived >= self.SETTLED else min(max(self.pause * 2, 1.0), self.MAX_PAUSE)
            self._restart_at = time.monotonic() + self.pause
            log.error(
                "runner exited (code %s) after %.0f s; starting it again in %.0f s",
                self.process.exitcode,
                lived,
                self.pause,
            )
        elif self._restart_at is not None and time.monotonic() >= self._restart_at:
            self._put_back_what_it_held()
            self._start()

    def stop(self, within: float) -> None:
        """SIGTERM: the runner finishes the batch in hand. One still running after `within` seconds
        (hung, or stuck in the database) is killed, and what it held goes back to the spool."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(within)
        if self.process.is_alive():
            log.error("runner did not stop within %.0f s; killed", within)
            self.process.kill()
            self.process.join()
        if self.process.exitcode != 0:
            self._put_back_what_it_held()

    def _put_back_what_it_held(self) -> None:
        if moved := self.spool.recover():
            log.info("%d spool entries the runner held go back to the queue", moved)


def _start_outbox_sender(app: App, stop: StopFlag) -> list[threading.Thread]:
    """The outbox's sender as a thread of serve (it waits on the relay, not the CPU)."""
    sender = app.outbox_sender()
    if sender is None:
        log.warning("no outbound relay set (POSTDESK_RELAY_HOST): replies wait in the outbox")
        return []
    thread = threading.Thread(
        target=sender.run, args=(stop, app.settings.outbox_poll_interval), name="postdesk-outbox", daemon=True
    )
    thread.start()
    return [thread]


def serve(settings: Settings, on_ready=print) -> None:
    """Run everything until SIGTERM or Ctrl-C, then stop within `settings.stop_timeout` seconds.

    Starting needs only the disk: the SMTP edge takes mail into the spool while the runner waits
    for the database (`App.services_once_reachable`).
    """
    from ingest.imap.poller import start_pollers
    from ingest.smtp import SmtpServer
    from postdesk.daily import DailyJobs

    app = App.open(settings, migrate=False)
    if moved := app.spool.recover():
        log.info("recovered %d spool entries from an earlier run", moved)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    smtp = SmtpServer(settings, app.spool, app.directory)
    port = smtp.start()  # a busy port ends serve here, before it has started any process or poller
    web = WebServer(settings, app.db)
    try:
        app.web_url = web.start()  # so does a busy web port
    except OSError:
        smtp.stop()
        raise
    runner: RunnerKeeper | None = None
    pollers: list[threading.Thread] = []
    daily = DailyJobs(settings)
    try:
        runner = RunnerKeeper(settings, app.spool)
        daily.start()
        pollers = start_pollers(settings.imap_accounts, app.spool, settings.data_dir, stop)
        pollers += _start_outbox_sender(app, stop)
        freeze_startup_heap()
        _wait_for_schema(app.db, stop)
        on_ready(port, app)
        while not stop.wait(0.5):
            runner.check()
    finally:
        # What is left of stop_timeout after this deadline is for killing a runner that ignored it.
        deadline = time.monotonic() + settings.stop_timeout * 0.8
        stop.set()
        smtp.stop()
        web.stop()
        daily.ask_to_stop()
        if runner is not None:
            runner.stop(max(deadline - time.monotonic(), 0.0))
        daily.stop(max(deadline - time.monotonic(), 0.0))
        for poller in pollers:  # daemon threads: one still in a network call ends with the process
            poller.join(timeout=max(deadline - time.monotonic(), 0.0))
        app.db.dispose()
        log.info("stopped")
