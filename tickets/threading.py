"""Which ticket a message belongs to, and by which rule — never by subject alone.

Rules, first match wins (the name is stored on the message as `thread_rule`):
  signed     In-Reply-To/References hold one of our signed Message-IDs
  reference  they hold a stored inbound Message-ID and the sender takes part in that ticket
             (or both messages came through the same mailing list: List-Id)
  token      the subject holds [#1234] and the sender takes part in ticket 1234
  new        none of these; `linked_to` is set when a stranger pointed at a ticket
A ticket an erasure kept as a shell (`erased_at`) is never found: ids are never reused, so a late
reply to an erased ticket opens a new one, whatever it points at.
Agents move messages and merge tickets: a stored message is looked up on the ticket it is on now
(also one of ours a signed id names), and a merged ticket's pointer is followed to where it went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models import Message, Ticket, TicketParticipant
from models.base import table
from tickets.signing import MessageIdSigner

SUBJECT_TOKEN = re.compile(r"\[#(\d{1,10})\]")
MAX_TICKET_ID = 2**31 - 1  # ticket ids are 32-bit integers; a larger [#n] points at nothing


@dataclass(frozen=True)
class TicketState:
    """What threading and the reopen rule read of a ticket: plain values, never a stale ORM object
    (the message store writes tickets with Core statements in the same transaction)."""

    id: int
    status: str
    closed_at: datetime | None
    updated_at: datetime


@dataclass
class ThreadDecision:
    rule: str
    ticket: TicketState | None = None
    linked_to: int | None = None


# The lookups are Core statements (table columns, not the models' attributes): the session runs
# them without the ORM's work around each call (bench/results/runner.md).
_TICKETS, _MESSAGES, _PARTICIPANTS = table(Ticket), table(Message), table(TicketParticipant)

# An erased person's ticket kept as a shell takes nothing in: a late reply starts afresh.
_TICKET = select(
    _TICKETS.c.id, _TICKETS.c.status, _TICKETS.c.closed_at, _TICKETS.c.updated_at, _TICKETS.c.merged_into_id
).where(_TICKETS.c.id == bindparam("id"), _TICKETS.c.erased_at.is_(None))
_MERGES = 20  # pointers followed at most (a merge never points back: see tickets.work.merge)


def _ticket(session: Session, ticket_id: int) -> TicketState | None:
    """The ticket, or the one it was merged into."""
    for _ in range(_MERGES):
        row = session.execute(_TICKET, {"id": ticket_id}).first()
        if row is None:
            return None
        if row.merged_into_id is None:
            return TicketState(*row[:4])
        ticket_id = row.merged_into_id
    return None


_STORED = select(_MESSAGES.c.ticket_id).where(
    _MESSAGES.c.message_id_header == bindparam("id"), _MESSAGES.c.ticket_id.is_not(None)
)
_PARTICIPANT = select(_PARTICIPANTS.c.ticket_id).where(
    _PARTICIPANTS.c.ticket_id == bindparam("ticket_id"), _PARTICIPANTS.c.address == bindparam("address")
)


def _is_participant(session: Session, ticket_id: int, address: str) -> bool:
    return session.execute(_PARTICIPANT, {"ticket_id": ticket_id, "address": address}).first() is not None


def _by_signature(session: Session, ids: list[str], signer: MessageIdSigner) -> TicketState | None:
    for message_id in reversed(ids):
        ticket_id = signer.ticket_of(message_id)
        if ticket_id is None or ticket_id > MAX_TICKET_ID:
            continue
        # our stored message may have been moved since it was sent: its ticket now, not the one it names
        ticket_id = session.execute(_STORED, {"id": message_id}).scalar() or ticket_id
        if (ticket := _ticket(session, ticket_id)) is not None:
            return ticket
    return None


@dataclass(frozen=True)
class _Earlier:
    """The stored message a reply points at: only the columns threading reads (not its bodies)."""

    ticket_id: int
    message_id_header: str
    list_id: str


# Built once, with an expanding parameter: the ORM select of whole messages it replaces loaded
# both bodies of every candidate (bench/results/runner.md).
_REFERENCED = (
    select(_MESSAGES.c.ticket_id, _MESSAGES.c.message_id_header, _MESSAGES.c.list_id)
    .where(_MESSAGES.c.message_id_header.in_(bindparam("ids", expanding=True)), _MESSAGES.c.ticket_id.is_not(None))
    .order_by(_MESSAGES.c.id.desc())
)


def _by_reference(session: Session, ids: list[str]) -> _Earlier | None:
    if not ids:
        return None
    candidates = [_Earlier(*row) for row in session.execute(_REFERENCED, {"ids": ids[-100:]})]
    if not candidates:
        return None
    order = {mid: i for i, mid in enumerate(ids)}
    return max(candidates, key=lambda m: order.get(m.message_id_header, -1))


def _by_token(session: Session, subject: str) -> TicketState | None:
    match = SUBJECT_TOKEN.search(subject)
    if not match or int(match[1]) > MAX_TICKET_ID:
        return None
    return _ticket(session, int(match[1]))


def find_thread(
    session: Session, *, sender: str, subject: str, references: list[str], list_id: str, signer: MessageIdSigner
) -> ThreadDecision:
    """Apply the rules in order; `references` is References then In-Reply-To, oldest first."""
    if (ticket := _by_signature(session, references, signer)) is not None:
        return ThreadDecision("signed", ticket)
    pointed: int | None = None
    if (earlier := _by_reference(session, references)) is not None:
        same_list = bool(list_id) and earlier.list_id == list_id
        if same_list or _is_participant(session, earlier.ticket_id, sender):
            return ThreadDecision("reference", _ticket(session, earlier.ticket_id))
        pointed = earlier.ticket_id
    if (ticket := _by_token(session, subject)) is not None:
        if _is_participant(session, ticket.id, sender):
            return ThreadDecision("token", ticket)
        pointed = pointed or ticket.id
    return ThreadDecision("new", None, pointed)
