"""The outbox is durable: a reply is committed before it is sent, and a sender killed between the
relay's 250 and its own commit sends it once more after it starts again — the same bytes, the same
Message-ID — and never a third time. The sender is the real `postdesk outbox send --watch`, the
relay a real aiosmtpd server; the kill lands in that window because the test holds the outbox
row's lock (on SQLite the database's write lock) from the moment the relay takes the DATA."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Message, OutboxMail
from relay import TestRelay
from serve import settings_env
from tickets.replies import Draft, Outgoing, send_reply
from models.base import utcnow
from waiting import wait_for


@pytest.fixture
def relay():
    relay = TestRelay()
    yield relay
    relay.stop()


class RowLock:
    """Holds the outbox row's lock in a write transaction of its own until released."""

    def __init__(self, db, outbox_id: int):
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(db, outbox_id), daemon=True)
        self.thread.start()
        assert self.taken.wait(30)

    def _hold(self, db, outbox_id: int) -> None:
        with db.write() as session:
            session.execute(select(OutboxMail.id).where(OutboxMail.id == outbox_id).with_for_update())
            self.taken.set()
            self.release.wait(60)

    def let_go(self) -> None:
        self.release.set()
        self.thread.join(30)


def sender(settings, relay: TestRelay, log: Path) -> subprocess.Popen:
    env = settings_env(
        settings,
        **{k: str(v) for k, v in relay.settings().items()},
        outbox_retry_seconds="0.5",
        outbox_poll_interval="0.05",
    )
    with open(log, "ab") as out:  # the sender writes to its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "postdesk", "outbox", "send", "--watch"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_sender_killed_after_the_relays_250_and_before_its_commit_resends_once_with_the_same_message_id(
    postdesk, relay, tmp_path
):
    postdesk.send(
        b"From: Carla <carla@example.org>\r\nTo: support@example.com\r\nSubject: Help\r\n"
        b"Message-ID: <ask@example.org>\r\n\r\nMy printer.\r\n",
        sender="carla@example.org",
    )
    postdesk.drain()
    app = postdesk.app
    with app.db.write() as session:
        ticket_id = session.scalar(select(Message.ticket_id))
        send_reply(
            session,
            app.store,
            Draft(ticket_id, "Add paper."),
            Outgoing(app.signer(), frozenset({"support@example.com"}), "Sam"),
            utcnow(),
        )
        outbox_id = session.scalar(select(OutboxMail.id))

    locks: list[RowLock] = []
    relay.handler.on_data = lambda _: locks.append(RowLock(app.db, outbox_id)) if not locks else None
    log = tmp_path / "sender.log"
    first = sender(postdesk.settings, relay, log)
    try:
        wait_for(lambda: relay.handler.quits == 1, 60, "the relay's 250 read by the sender (its QUIT)")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        for lock in locks:
            lock.let_go()
    with app.db.read() as session:
        row = session.get(OutboxMail, outbox_id)
        assert (row.status, row.attempts) == ("queued", 1), "the kill came before the commit"
    assert len(relay.received) == 1

    second = sender(postdesk.settings, relay, log)
    try:
        wait_for(lambda: _status(app, outbox_id) == "sent", 60, "the resend marked sent")
    finally:
        second.terminate()
        assert second.wait(30) == 0
    done = subprocess.run(
        [sys.executable, "-m", "postdesk", "outbox", "send"],
        capture_output=True,
        text=True,
        env=settings_env(postdesk.settings, **{k: str(v) for k, v in relay.settings().items()}),
    )
    assert done.returncode == 0 and done.stdout.strip() == "sent 0", done.stdout + done.stderr
    assert len(relay.received) == 2, "one resend, never a third"
    first_copy, resend = relay.received
    assert first_copy.raw == resend.raw and first_copy.message["Message-ID"] == resend.message["Message-ID"]
    with app.db.read() as session:
        assert session.get(OutboxMail, outbox_id).attempts == 2


def _status(app, outbox_id: int) -> str:
    with app.db.read() as session:
        return session.get(OutboxMail, outbox_id).status


def test_serve_sends_what_waits_in_the_outbox_through_the_relay_in_its_settings(settings, serve, relay):
    from postdesk.app import App

    server = serve(**{k: str(v) for k, v in relay.settings().items()}, outbox_poll_interval="0.1")
    app = App.open(settings)
    try:
        import smtplib

        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.sendmail(
                "carla@example.org",
                ["support@example.com"],
                b"From: carla@example.org\r\nTo: support@example.com\r\nSubject: Hi\r\n\r\nHello\r\n",
            )
        ticket_id = wait_for(lambda: _ticket(app), 60, "the mail stored")
        with app.db.write() as session:
            send_reply(
                session,
                app.store,
                Draft(ticket_id, "Hello back."),
                Outgoing(app.signer(), frozenset({"support@example.com"}), "Sam"),
                utcnow(),
            )
        wait_for(lambda: relay.received, 60, "serve's sender handing the reply to the relay")
        assert relay.received[0].rcpt_tos == ["carla@example.org"]
    finally:
        assert server.terminate() == 0
        app.db.dispose()


def _ticket(app) -> int | None:
    with app.db.read() as session:
        return session.scalar(select(Message.ticket_id))
