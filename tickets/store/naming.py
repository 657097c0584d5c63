"""Rows that name a person outside their own messages: the recipient rows of mail others sent
(To, Cc, a co-author), the ticket participants, a sender rule for the address, and the contact.

An erasure removes them once the person's own messages are gone: found from the address by
indexed lookups (`naming`), or, when the erasure ledger is replayed, given by ids (`unname`).
The mail others sent stays as it was sent (their raw bytes and text may still name the person):
it is theirs. What goes is every row that finds it, or threads anything, by the person's address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models import Contact, Recipient, SenderRule, TicketParticipant
from models.base import table
from tickets.store.sql import Statement

_R, _P, _C, _S = table(Recipient), table(TicketParticipant), table(Contact), table(SenderRule)
_DELETE_RECIPIENT = Statement(_R.delete().where(_R.c.id == bindparam("id")))
_DELETE_PARTICIPANT = Statement(
    _P.delete().where(_P.c.ticket_id == bindparam("ticket_id"), _P.c.address == bindparam("address"))
)
_DELETE_CONTACT = Statement(_C.delete().where(_C.c.id == bindparam("id")))
_DELETE_RULE = Statement(_S.delete().where(_S.c.pattern == bindparam("pattern")))


@dataclass
class Naming:
    recipients: list[int] = field(default_factory=list)  # recipient row ids
    participants: list[tuple[int, str]] = field(default_factory=list)  # (ticket id, address)
    contacts: list[int] = field(default_factory=list)
    sender_rules: list[str] = field(default_factory=list)  # patterns

    def __bool__(self) -> bool:
        return bool(self.recipients or self.participants or self.contacts or self.sender_rules)


def naming(session: Session, address: str) -> Naming:
    """The rows naming `address` (normalised, lower-case), by indexes only."""
    return Naming(
        recipients=sorted(session.scalars(select(Recipient.id).where(Recipient.address == address))),
        participants=sorted(
            (t, address)
            for t in session.scalars(select(TicketParticipant.ticket_id).where(TicketParticipant.address == address))
        ),
        contacts=sorted(session.scalars(select(Contact.id).where(Contact.address == address))),
        sender_rules=sorted(session.scalars(select(SenderRule.pattern).where(SenderRule.pattern == address))),
    )


def unname(session: Session, rows: Naming) -> dict[str, int]:
    """Delete these rows (those already gone are skipped); how many of each went."""
    return {
        "recipients": _DELETE_RECIPIENT.many(session, [{"id": i} for i in rows.recipients]),
        "participants": _DELETE_PARTICIPANT.many(
            session, [{"ticket_id": t, "address": a} for t, a in rows.participants]
        ),
        "contacts": _DELETE_CONTACT.many(session, [{"id": i} for i in rows.contacts]),
        "sender_rules": _DELETE_RULE.many(session, [{"pattern": p} for p in rows.sender_rules]),
    }
