"""The sender: takes due rows from the outbox, hands each to the relay, and marks it sent or
failed (`tickets.outbox` keeps the rules). It runs as a thread of `postdesk serve`, or as
`postdesk outbox send`.

A failed attempt waits `retry_seconds`, doubling with each attempt up to `MAX_WAIT`; after
`max_attempts`, or at a permanent refusal, the row is marked failed and the ticket shows it.
A database outage is waited out (logged once), as the runner does.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol
from collections.abc import Callable

from ingest.relay import Relay, RelayError, send
from ingest.runner import describe_outage, is_outage
from models.base import utcnow
from models.db import Database
from tickets import outbox

log = logging.getLogger("postdesk.outbox")

MAX_WAIT = timedelta(hours=1)


class Stop(Protocol):
    def wait(self, timeout: float) -> bool: ...


class OutboxSender:
    def __init__(
        self,
        db: Database,
        relay: Relay,
        *,
        retry_seconds: float = 60.0,
        max_attempts: int = 12,
        now: Callable[[], datetime] = utcnow,
    ):
        self.db, self.relay = db, relay
        self.retry_seconds, self.max_attempts, self.now = retry_seconds, max_attempts, now

    def backoff(self, attempts: int) -> timedelta:
        return min(timedelta(seconds=self.retry_seconds * 2 ** (attempts - 1)), MAX_WAIT)

    def send_due(self) -> int:
        """Send what is due now; how many rows the relay took."""
        with self.db.read() as session:
            due = outbox.due(session, self.now())
        return sum(self._deliver(outbox_id) for outbox_id in due)

    def run(self, stop: Stop, poll_interval: float = 1.0) -> None:
        """Send due mail until `stop` is set."""
        down = False
        while True:
            try:
                self.send_due()
                if down:
                    log.warning("database reachable again; the outbox sends")
                down = False
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("the outbox sender failed; it tries again")
                elif not down:
                    log.warning("database unavailable (%s); the outbox waits", describe_outage(exc))
                    down = True
            if stop.wait(poll_interval):
                return

    def _deliver(self, outbox_id: int) -> bool:
        with self.db.write() as session:
            delivery = outbox.claim(session, outbox_id, self.now(), self.backoff)
        if delivery is None:
            return False
        if not delivery.rcpt_tos:
            with self.db.write() as session:
                outbox.failed(session, outbox_id, "no recipients left", final=True)
            return False
        try:
            refused = send(self.relay, delivery.mail_from, delivery.rcpt_tos, delivery.raw)
        except RelayError as exc:
            final = exc.permanent or delivery.attempts >= self.max_attempts
            with self.db.write() as session:
                outbox.failed(session, outbox_id, str(exc), final=final)
            log.warning("outbox %d: attempt %d failed%s", outbox_id, delivery.attempts, " for good" if final else "")
            return False
        with self.db.write() as session:
            outbox.sent(session, outbox_id, self.now(), refused)
        log.info("outbox %d: sent (attempt %d)", outbox_id, delivery.attempts)
        return True
