"""Shared fixtures: settings on a throwaway data folder and database, a running Postdesk, the corpus.

The database is SQLite unless POSTDESK_TEST_PG_URL names a PostgreSQL server; then every test
gets a fresh database cloned from a migrated template on that server.
"""

from __future__ import annotations

import os
import secrets
import smtplib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from ingest.smtp import SmtpServer
from models.db import Database
from models.settings import MailboxConfig, Settings
from postdesk.app import App
from waiting import wait_for

pytest_plugins = ["dovecot"]

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("POSTDESK_TEST_PG_URL", "")

MAILBOXES = [
    MailboxConfig(address="support@example.com", department="Support", aliases=["help@example.com"]),
    MailboxConfig(address="billing@example.com", department="Billing"),
]


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _pg_admin():
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template():
    if not PG_URL:
        yield None
        return
    name = f"pdtmpl_{os.getpid()}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    db = Database(_pg_url(name))
    db.migrate()
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@contextmanager
def new_pg_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database, a clone of `template` or empty, dropped afterwards: its URL."""
    name = f"pdtest_{secrets.token_hex(4)}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path, pg_template):
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'postdesk.db'}"
        return
    with new_pg_database(pg_template) as url:
        yield url


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        smtp_port=0,
        mailboxes=MAILBOXES,
        min_free_disk=0,
        runner_poll_interval=0.05,
        runner_prepare_workers=0,
        secret_key="test-secret",
    )


class Harness:
    """A Postdesk in this process: the real SMTP server in its thread, and the real runner, which
    drains the spool when the test says so (`drain`), through its own API."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.app = App.open(settings)
        self.runner = self.app.runner()
        self.smtp = SmtpServer(settings, self.app.spool, self.app.directory)
        self.port = self.smtp.start()

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)

    def send(
        self, raw: bytes | str, to: list[str] | str = "support@example.com", sender: str = "customer@example.org"
    ) -> tuple[int, bytes]:
        """Send one message in its own connection; returns the DATA reply."""
        raw = raw.encode() if isinstance(raw, str) else raw
        with self.client() as client:
            client.ehlo()
            client.mail(sender)
            for rcpt in [to] if isinstance(to, str) else to:
                code, reply = client.rcpt(rcpt)
                assert code == 250, (code, reply)
            return client.data(raw)

    def send_together(self, messages: list[bytes]) -> list[tuple[int, bytes]]:
        """Send each message in its own connection at once, holding the edge's spool writes until all
        of them wait: the first is written alone, the others as one group file, as under load."""
        spool, loop = self.app.spool, self.smtp.controller.loop
        commit, stage = spool.commit, spool.stage
        entered, gate, staged, groups = threading.Event(), threading.Event(), [], []

        def held(group):
            entered.set()
            gate.wait(10)
            groups.append(len(group))
            return commit(group)

        def counted(raw, envelope):
            staged.append(raw)
            return stage(raw, envelope)

        spool.commit, spool.stage = held, counted
        try:
            with ThreadPoolExecutor(len(messages)) as clients:
                replies = [clients.submit(self.send, messages[0])]
                entered.wait(10)
                replies += [clients.submit(self.send, raw) for raw in messages[1:]]
                wait_for(lambda: len(staged) == len(messages), 10, what="every message handed to the spool")
                # The loop hands a staged entry to the spool thread in the same step: once a callback
                # queued after the last staging has run, every entry waits there.
                handed_over = threading.Event()
                loop.call_soon_threadsafe(handed_over.set)
                assert handed_over.wait(10)
                gate.set()
                codes = [reply.result() for reply in replies]
        finally:
            del spool.commit, spool.stage
        assert groups == [1, len(messages) - 1], groups
        return codes

    def drain(self, timeout: float = 60.0) -> None:
        """Let the runner store everything waiting in the spool (TimeoutError if it cannot)."""
        self.runner.drain(timeout)

    def close(self) -> None:
        self.smtp.stop()
        self.runner.close()
        self.app.db.dispose()


@pytest.fixture
def postdesk(settings):
    harness = Harness(settings)
    yield harness
    harness.close()


@pytest.fixture
def desk(settings):
    """A Postdesk without its SMTP server: the app and a runner to `drain()` its spool by hand."""
    app = App.open(settings)
    runner = app.runner()
    yield app, runner
    app.db.dispose()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared SpamAssassin corpus; skipped when absent, a failure when CI is set."""
    path = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus")) / "spamassassin-2002"
    if not (path / "ham").is_dir() or not (path / "spam").is_dir():
        message = f"the shared corpus is not at {path} (set POSTDESK_CORPUS_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def serve(settings, tmp_path):
    """Starts `postdesk serve` processes on a database that has its schema (as after an earlier
    run), so a test may read it at once; whatever a failing test left running is killed afterwards."""
    from serve import ServeProcess

    db = Database(settings.sqlalchemy_url)
    db.migrate()
    db.dispose()
    started: list[ServeProcess] = []

    def start(ready: bool = True, **overrides) -> ServeProcess:
        """`overrides` are settings by name, given to the process as POSTDESK_* variables."""
        process = ServeProcess(settings, tmp_path / "serve.log", ready, **overrides)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None or process.left_behind():
            process.kill()
        process.proc.stdout.close()  # when it ended without terminate() or kill(), which close it


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, run again only what touches the database; the rest was run on SQLite."""
    if not PG_URL:
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
