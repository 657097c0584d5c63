"""Nothing that got a 250 is lost: SIGKILL at random moments, database outages, clean shutdown."""

from __future__ import annotations

import errno
import os
import random
import signal
import smtplib
import threading
import time
from email.message import EmailMessage

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from conftest import PG_URL, Harness
from ingest import pipeline
from ingest.spool import Spool
from models import Message
from models.db import Database
from models.mail.envelope import Envelope
from waiting import wait_for


def message(n: int) -> bytes:
    return (
        f"From: c{n}@example.org\r\nTo: support@example.com\r\nSubject: n{n}\r\n"
        f"Message-ID: <durable-{n}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


class Sender(threading.Thread):
    """Sends numbered messages until stopped or the server goes away; remembers which got 250."""

    def __init__(self, port: int, start_at: int, acknowledged: set[int]):
        super().__init__(daemon=True)
        self.port, self.n, self.acknowledged = port, start_at, acknowledged
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as client:
                    client.sendmail("c@example.org", ["support@example.com"], message(self.n))
                self.acknowledged.add(self.n)
            except (OSError, smtplib.SMTPException):
                return
            finally:
                self.n += 1


def stored_counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(select(Message.message_id_header, func.count()).group_by(Message.message_id_header))
        return dict(rows.all())


def stored_counts_after_serve(settings) -> dict[str, int]:
    """`stored_counts` through a Database of the test's own, disposed afterwards."""
    db = Database(settings.sqlalchemy_url)
    try:
        return stored_counts(db)
    finally:
        db.dispose()


def wait_drained(settings, timeout=60) -> None:
    spool = Spool(settings.spool_dir)
    wait_for(lambda: spool.depth()["new"] == spool.depth()["cur"] == 0, timeout, what="the spool to drain")


def test_sigkill_at_random_moments_loses_nothing_acknowledged(settings, tmp_path, serve):
    acknowledged: set[int] = set()
    rng = random.Random(20261129)
    next_n = 0
    for _ in range(6):
        server = serve()
        sender = Sender(server.port, next_n, acknowledged)
        sender.start()
        # The moment: after a random number of replies, so the kill finds the edge and the runner
        # somewhere in the middle of their work, on a fast machine or a slow one.
        wanted = len(acknowledged) + rng.randint(4, 12)
        wait_for(lambda n=wanted: len(acknowledged) >= n, 60, what=f"{wanted} acknowledged messages")
        server.kill()
        sender.stop.set()
        sender.join(10)
        next_n = sender.n + 1
    server = serve()
    wait_drained(settings)
    assert server.terminate() == 0
    counts = stored_counts_after_serve(settings)
    assert len(acknowledged) > 20
    assert all(counts.get(f"durable-{n}@example.org") == 1 for n in acknowledged)
    assert set(counts.values()) == {1}


def test_sigterm_stops_cleanly_and_a_restart_processes_what_was_left(settings, tmp_path, serve):
    server = serve()
    acknowledged: set[int] = set()
    sender = Sender(server.port, 0, acknowledged)
    sender.start()
    wait_for(lambda: len(acknowledged) >= 10, what="mail flowing")
    assert server.terminate(timeout=30) == 0
    sender.stop.set()
    sender.join(10)
    server = serve()
    wait_drained(settings)
    server.terminate()
    counts = stored_counts_after_serve(settings)
    assert acknowledged and all(counts.get(f"durable-{n}@example.org") == 1 for n in acknowledged)


class Outage:
    """Makes the database unusable for the runner and brings it back."""

    def __init__(self, settings):
        self.url = settings.sqlalchemy_url

    def __enter__(self):
        if self.url.startswith("sqlite"):
            self._lock = create_engine(self.url).raw_connection()
            self._lock.execute("BEGIN EXCLUSIVE")
        else:
            name = make_url(self.url).database
            self._admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
        return self

    def __exit__(self, *exc):
        if self.url.startswith("sqlite"):
            self._lock.rollback()
            self._lock.close()
        else:
            with self._admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {make_url(self.url).database} ALLOW_CONNECTIONS true"))
            self._admin.dispose()


def test_a_runner_that_dies_is_started_again_after_a_growing_pause_and_gets_what_it_held(settings, tmp_path, serve):
    server = serve()
    first = server.runner()
    os.kill(first, signal.SIGKILL)
    spool = Spool(settings.spool_dir)
    spool.claim(spool.put(message(1), Envelope(rcpt_tos=["support@example.com"])))  # the dead runner held it
    second = server.runner(not_pid=first)
    killed = time.monotonic()
    os.kill(second, signal.SIGKILL)
    server.runner(not_pid=second)
    assert time.monotonic() - killed >= 1.9  # died young twice: the second pause is 2 s
    wait_drained(settings)
    assert stored_counts_after_serve(settings) == {"durable-1@example.org": 1}
    log = (tmp_path / "serve.log").read_text()
    assert "starting it again in 1 s" in log and "starting it again in 2 s" in log
    assert "1 spool entries the runner held go back to the queue" in log
    assert server.terminate() == 0


def test_a_database_outage_makes_the_spool_grow_and_then_drain(settings, caplog):
    harness = Harness(settings.model_copy(update={"sqlite_busy_timeout": 0.2}))
    try:
        harness.send(message(0))
        harness.drain()
        with Outage(settings):
            codes = [harness.send(message(n))[0] for n in range(1, 17)]
            codes += [code for code, _ in harness.send_together([message(n) for n in range(17, 21)])]
            assert [harness.runner.step(), harness.runner.step()] == [0, 0]  # tried twice, stored nothing
            assert harness.runner.outage
            assert codes == [250] * 20
            assert harness.app.spool.depth() == {"new": 20, "cur": 0, "bad": 0}
        harness.drain()
        counts = stored_counts(harness.app.db)
        assert len(counts) == 21 and set(counts.values()) == {1}
        assert harness.app.spool.depth()["bad"] == 0
        assert harness.runner.outage is None
        assert caplog.text.count("cannot store") == 1 and caplog.text.count("storing again") == 1
    finally:
        harness.close()


def with_attachment(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = f"c{n}@example.org", "support@example.com", f"n{n}"
    mail["Message-ID"] = f"<durable-{n}@example.org>"
    mail.set_content(f"body {n}")
    mail.add_attachment(f"invoice {n}".encode(), maintype="application", subtype="pdf", filename=f"{n}.pdf")
    return mail.as_bytes().replace(b"\n", b"\r\n")


class FullDisk:
    """The disk has no space left: every fsync fails with ENOSPC, as a full ext4 reports the writes
    it had accepted into its cache. (SQLite syncs outside Python, so the database goes on working.)"""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __enter__(self):
        def no_space(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        self.monkeypatch.setattr(os, "fsync", no_space)

    def __exit__(self, *exc):
        self.monkeypatch.undo()


class Poison:
    """A pipeline stage that fails every message while active: the batch is retried one by one."""

    active = True

    def __call__(self, ctx: pipeline.Context) -> None:
        if self.active:
            raise RuntimeError("injected fault")


def test_a_full_disk_is_an_outage_the_runner_waits_out_without_losing_or_setting_aside_mail(
    postdesk, monkeypatch, caplog
):
    poison = Poison()
    monkeypatch.setattr(pipeline, "STAGES", (poison, *pipeline.STAGES))
    codes = postdesk.send_together([with_attachment(n) for n in range(5)])
    assert [code for code, _ in codes] == [250] * 5
    with FullDisk(monkeypatch):
        # a batch that fails for its own sake is split to be tried one by one: no space to split it
        assert postdesk.runner.step() == 0
        poison.active = False
        # the batch itself: no space for its attachments
        assert postdesk.runner.step() == 0
        assert "No space left on device" in postdesk.runner.outage
        assert postdesk.app.spool.depth() == {"new": 5, "cur": 0, "bad": 0}
        assert sorted(os.listdir(postdesk.app.spool.root / "new"))[1].endswith("+4.group")  # put back whole
    postdesk.drain()
    assert stored_counts(postdesk.app.db) == {f"durable-{n}@example.org": 1 for n in range(5)}
    assert postdesk.app.spool.depth() == {"new": 0, "cur": 0, "bad": 0}
    assert caplog.text.count("cannot store (OSError: [Errno 28] No space left on device)") == 1
    assert caplog.text.count("storing again") == 1


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's writer lock")
def test_a_cli_writer_holding_the_lock_never_bounces_mail(postdesk):
    """Another process writing (BEGIN IMMEDIATE) while mail arrives: SMTP still says 250, all stored."""
    with postdesk.app.db.write() as session:
        session.execute(text("SELECT 1"))
        codes = [postdesk.send(message(n))[0] for n in range(5)]
    postdesk.drain()
    assert codes == [250] * 5 and len(stored_counts(postdesk.app.db)) == 5
