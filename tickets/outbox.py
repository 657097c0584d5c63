"""The outbox's rows: mail is queued in the transaction that stores it, and a sender claims, sends
and marks each row (`ingest.outbound`).

Durable before sent: a reply's message, its bytes and its outbox row commit together, and a row
is marked sent only after the relay's 250. A sender that dies between the two leaves the row
queued, and it is sent again — the same bytes, the same Message-ID — once its claim runs out: at
most one resend per crash. Claiming a row sets its next attempt (the backoff) in the same
statement that checks nobody claimed it since, so two senders never take the same row at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import Agent, Message, OutboxMail, RawMessage, Recipient
from models.db import affected

_ADDRESS = re.compile(r"<?[^\s<>\"'@]+@[^\s<>\"']+>?")


@dataclass(frozen=True)
class Delivery:
    """One claimed row, ready to hand to the relay."""

    id: int
    attempts: int  # counting this one
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


def queue(
    session: Session,
    kind: str,
    message_id: int,
    mail_from: str,
    *,
    agent_id: int | None = None,
    raw: bytes | None = None,
) -> int:
    """A delivery of stored message `message_id` to its envelope recipients, or of `raw` (a notification
    telling of that message) to an agent; sent once the caller's transaction commits."""
    row = OutboxMail(
        kind=kind,
        message_id=message_id,
        mail_from=mail_from,
        agent_id=agent_id,
        raw=raw,
        status="queued",
        attempts=0,
        last_error="",
    )
    session.add(row)
    session.flush()
    return row.id


def due(session: Session, now: datetime, limit: int = 20) -> list[int]:
    return list(
        session.scalars(
            select(OutboxMail.id)
            .where(OutboxMail.status == "queued", OutboxMail.next_attempt_at <= now)
            .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
            .limit(limit)
        )
    )


def claim(session: Session, outbox_id: int, now: datetime, backoff) -> Delivery | None:
    """Take a due row: its attempt is counted and its next one set `backoff(attempts)` from now,
    which is also how long the claim lasts. None when it is not due or someone took it first."""
    row = session.execute(
        select(
            OutboxMail.attempts,
            OutboxMail.kind,
            OutboxMail.message_id,
            OutboxMail.agent_id,
            OutboxMail.mail_from,
            OutboxMail.raw,
        ).where(OutboxMail.id == outbox_id, OutboxMail.status == "queued", OutboxMail.next_attempt_at <= now)
    ).first()
    if row is None:
        return None
    attempts = row.attempts + 1
    taken = affected(
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == outbox_id, OutboxMail.attempts == row.attempts, OutboxMail.status == "queued")
            .values(attempts=attempts, next_attempt_at=now + backoff(attempts))
        )
    )
    if not taken:
        return None
    if row.agent_id is not None:
        rcpt_tos = [a for a in session.scalars(select(Agent.email).where(Agent.id == row.agent_id, Agent.active))]
        raw = row.raw
    else:
        rcpt_tos = list(
            session.scalars(
                select(Recipient.address)
                .where(Recipient.message_id == row.message_id, Recipient.kind == "envelope")
                .order_by(Recipient.id)
            )
        )
        raw = session.scalar(select(RawMessage.raw).where(RawMessage.message_id == row.message_id))
    return Delivery(outbox_id, attempts, row.mail_from, rcpt_tos, raw or b"")


def sent(session: Session, outbox_id: int, now: datetime, refused: dict[str, str]) -> None:
    """The relay took it (for every recipient but `refused`: address → its reply)."""
    note = f"{len(refused)} recipient(s) refused: " + "; ".join(refused.values()) if refused else ""
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == outbox_id)
        .values(status="sent", sent_at=now, last_error=without_addresses(note))
    )


def failed(session: Session, outbox_id: int, error: str, *, final: bool) -> None:
    """This attempt failed; `final`: no more attempts (a permanent refusal, or the last attempt)."""
    values = {"last_error": without_addresses(error)}
    if final:
        values["status"] = "failed"
    session.execute(update(OutboxMail).where(OutboxMail.id == outbox_id).values(**values))


def retry(session: Session, outbox_id: int, now: datetime) -> bool:
    """An agent's "try again" on a failed delivery: queued at once, attempts counted afresh."""
    return bool(
        affected(
            session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == outbox_id, OutboxMail.status == "failed")
                .values(status="queued", attempts=0, next_attempt_at=now)
            )
        )
    )


def deliveries(session: Session, message_ids: list[int]) -> dict[int, OutboxMail]:
    """The delivery of each of these messages we sent (notifications left out)."""
    rows = session.scalars(
        select(OutboxMail).where(OutboxMail.message_id.in_(message_ids), OutboxMail.kind != "notification")
    )
    return {row.message_id: row for row in rows}


def ticket_of_delivery(session: Session, outbox_id: int) -> int | None:
    return session.scalar(
        select(Message.ticket_id)
        .join(OutboxMail, OutboxMail.message_id == Message.id)
        .where(OutboxMail.id == outbox_id, OutboxMail.kind != "notification")
    )


def waiting(session: Session) -> dict[str, int]:
    """How many rows are in each state (for `postdesk status` and the CLI)."""
    return {
        status: n for status, n in session.execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status))
    }


def without_addresses(text: str) -> str:
    """A relay's reply as we keep it: addresses taken out (it is shown and kept, never a person's data)."""
    return _ADDRESS.sub("<address>", text)[:500]
