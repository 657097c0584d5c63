"""`postdesk outbox list|send|retry` on a reply the relay refused: listed with its reason (no
address in it), queued again by `retry`, sent by `send`; bad input is one clear line."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Message
from models.base import utcnow
from relay import TestRelay
from test_cli import assert_clean_failure, cli, cli_json
from serve import settings_env
from tickets.replies import Draft, Outgoing, send_reply


@pytest.fixture
def relay():
    relay = TestRelay()
    yield relay
    relay.stop()


def test_a_refused_reply_is_listed_retried_and_sent_from_the_command_line(postdesk, settings, relay):
    postdesk.send(b"From: carla@example.org\r\nTo: support@example.com\r\nSubject: Hi\r\n\r\nHello\r\n")
    postdesk.drain()
    app = postdesk.app
    with app.db.write() as session:
        send_reply(
            session,
            app.store,
            Draft(session.scalar(select(Message.ticket_id)), "Hello back."),
            Outgoing(app.signer(), frozenset(), "Sam"),
            utcnow(),
        )
    env = settings_env(settings, **{k: str(v) for k, v in relay.settings().items()})
    relay.handler.answer = lambda _: "550 5.7.1 <carla@example.org> not welcome"
    assert cli(settings, "outbox", "send", env=env).stdout.strip() == "sent 0"
    [row] = cli_json(settings, "outbox", "list")
    assert (row["kind"], row["status"], row["last_error"]) == ("reply", "failed", "550 5.7.1 <address> not welcome")

    relay.handler.answer = lambda _: "250 ok"
    assert cli(settings, "outbox", "retry", str(row["id"])).returncode == 0
    assert cli(settings, "outbox", "send", env=env).stdout.strip() == "sent 1"
    assert cli_json(settings, "outbox", "list") == [] and len(relay.received) == 1
    assert_clean_failure(cli(settings, "outbox", "retry", str(row["id"])), f"no failed delivery {row['id']}")
    assert_clean_failure(cli(settings, "outbox", "send"), "no outbound relay is set")
