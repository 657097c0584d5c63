"""Moving stored messages to another ticket (an agent's merge, move or split).

A message keeps its Message-ID and every copy; only its ticket changes, so a later reply that
names it (In-Reply-To/References) threads to where it is now (`tickets.threading` reads the
message's current ticket). Its sender, To and Cc become participants of the ticket it joins, and
leave the ticket it left when no message there names them any more. It is flagged "moved": its
threading rule says how it arrived, no longer where it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import JSON, bindparam, select
from sqlalchemy.orm import Session

from models import Message
from models.base import table
from tickets.store.erase import _DELETE_PARTICIPANT, brought, unneeded
from tickets.store.sql import Statement
from tickets.store.writes import _ADD_PARTICIPANT

_M = table(Message)
_MOVE = Statement(
    _M.update()
    .where(_M.c.id == bindparam("id"))
    .values(ticket_id=bindparam("ticket_id"), flags=bindparam("flags", type_=JSON))
)


def move(session: Session, message_ids: Sequence[int], ticket_id: int) -> set[int]:
    """Put these messages on ticket `ticket_id`; returns the tickets they came from."""
    messages = session.execute(
        select(Message.id, Message.ticket_id, Message.from_address, Message.flags).where(
            Message.id.in_(sorted(set(message_ids)))
        )
    ).all()
    moving = [m for m in messages if m.ticket_id != ticket_id]
    if not moving:
        return set()
    left = brought(session, moving)
    _MOVE.many(session, [{"id": m.id, "ticket_id": ticket_id, "flags": sorted({*m.flags, "moved"})} for m in moving])
    _ADD_PARTICIPANT.many(session, [{"ticket_id": ticket_id, "address": a[:320]} for a in sorted({a for _, a in left})])
    _DELETE_PARTICIPANT.many(session, [{"ticket_id": t, "address": a} for t, a in sorted(unneeded(session, left))])
    return {m.ticket_id for m in moving if m.ticket_id is not None}
