"""A real SMTP relay for the outbox's tests: aiosmtpd on loopback, keeping what it accepts.

`answer` decides the reply to each DATA (default 250); `on_data` runs first (a test kills the
sender there, or takes a database lock).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from collections.abc import Callable

from aiosmtpd.controller import Controller

from ingest.relay import Relay


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], str] = lambda _: "250 2.0.0 queued"
    on_data: Callable[[Received], None] = lambda _: None
    quits: int = 0  # QUIT commands seen: a client that sends one has read the reply to its DATA

    async def handle_DATA(self, server, session, envelope):
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        self.on_data(got)
        reply = self.answer(got)
        if reply.startswith("250"):
            self.received.append(got)
        return reply

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"


class _Controller(Controller):
    def _trigger_server(self):  # port 0: wake the server on the port it got
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class TestRelay:
    __test__ = False

    def __init__(self, **controller):
        """`controller`: aiosmtpd's options (tls_context, ssl_context, authenticator, ...)."""
        self.handler = RecordingHandler()
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=0, **controller)
        self.controller.start()
        self.port = self.controller.server.sockets[0].getsockname()[1]

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def config(self) -> Relay:
        return Relay("127.0.0.1", self.port, "none", timeout=10)

    def settings(self) -> dict:
        return {"relay_host": "127.0.0.1", "relay_port": self.port, "relay_security": "none", "relay_timeout": 10}

    def stop(self) -> None:
        self.controller.stop()
