"""Legal holds: what a hold covers, which no retention rule touches and no erasure removes.

A hold names a ticket or an address, with a reason, and lasts until a date or until removed. An
address hold covers every ticket the address takes part in (as contact, participant, sender or
recipient of one of its messages) and every message sent by or naming it, found by indexed lookups.
Adding and removing a hold is audited with the keyed hash of the address, never the address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from models import Contact, LegalHold, Message, Recipient, Ticket, TicketParticipant
from models.db import affected
from retention.audit import record
from retention.ledger import ErasureLedger, normalise_address


class HoldError(Exception):
    """A hold request that cannot be done; the message is for people."""


@dataclass
class Held:
    """What the holds in force cover."""

    holds: list[LegalHold] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)

    def messages(self, session: Session) -> set[int]:
        """Messages in held tickets, sent by a held address or naming one."""
        found: set[int] = set()
        tickets = sorted(self.tickets)
        for i in range(0, len(tickets), 500):
            found.update(session.scalars(select(Message.id).where(Message.ticket_id.in_(tickets[i : i + 500]))))
        if self.addresses:
            found.update(
                session.scalars(
                    select(Message.id).where(
                        or_(Message.from_address.in_(self.addresses), Message.envelope_from.in_(self.addresses))
                    )
                )
            )
            found.update(session.scalars(select(Recipient.message_id).where(Recipient.address.in_(self.addresses))))
        return found


def in_force(session: Session, now: datetime) -> list[LegalHold]:
    return list(
        session.scalars(
            select(LegalHold).where(or_(LegalHold.until.is_(None), LegalHold.until > now)).order_by(LegalHold.id)
        )
    )


def held(session: Session, now: datetime) -> Held:
    """What the holds in force cover now."""
    covered = Held(in_force(session, now))
    covered.tickets = {h.ticket_id for h in covered.holds if h.ticket_id is not None}
    covered.addresses = {h.address for h in covered.holds if h.address}
    if covered.addresses:
        covered.tickets |= set(tickets_of(session, covered.addresses))
    return covered


def tickets_of(session: Session, addresses: set[str]) -> set[int]:
    """Tickets these addresses take part in: as contact, participant, sender or recipient."""
    found = set(
        session.scalars(
            select(Ticket.id).join(Contact, Contact.id == Ticket.contact_id).where(Contact.address.in_(addresses))
        )
    )
    found |= set(session.scalars(select(TicketParticipant.ticket_id).where(TicketParticipant.address.in_(addresses))))
    found |= set(
        session.scalars(
            select(Message.ticket_id).where(
                or_(Message.from_address.in_(addresses), Message.envelope_from.in_(addresses))
            )
        )
    )
    found |= set(
        session.scalars(
            select(Message.ticket_id)
            .join(Recipient, Recipient.message_id == Message.id)
            .where(Recipient.address.in_(addresses))
        )
    )
    return found - {None}


def blocking(session: Session, address: str, tickets: list[int], now: datetime) -> list[LegalHold]:
    """The holds in force on this address or on any of these tickets (what an erasure would remove)."""
    wanted = set(tickets)
    return [h for h in in_force(session, now) if h.address == address or h.ticket_id in wanted]


def describe(hold: LegalHold, named: bool = True) -> str:
    """The hold in words; `named=False` leaves its address out (an error message may be logged)."""
    what = f"ticket {hold.ticket_id}" if hold.ticket_id is not None else hold.address if named else "their address"
    until = f" until {hold.until:%Y-%m-%d %H:%M} UTC" if hold.until else ""
    return f"legal hold {hold.id} on {what}{until} ({hold.reason})"


def add(
    session: Session, ledger: ErasureLedger, target: str, reason: str, until: datetime | None, actor: str, now: datetime
) -> LegalHold:
    """A hold on a ticket (its id) or an address."""
    reason = reason.strip()
    if not reason:
        raise HoldError("give a reason (--reason)")
    if until is not None and until <= now:
        raise HoldError(f"--until {until:%Y-%m-%d %H:%M} UTC is in the past")
    hold = LegalHold(reason=reason[:1000], actor=actor[:200], created_at=now, until=until)
    if target.strip().isdigit():
        hold.ticket_id = int(target)
        if session.get(Ticket, hold.ticket_id) is None:
            raise HoldError(f"no ticket {hold.ticket_id}")
    else:
        hold.address = normalise_address(target)
        if "@" not in hold.address or len(hold.address) > 320:
            raise HoldError("give a ticket id or an address (name@example.org)")
    session.add(hold)
    session.flush()
    _audit(session, ledger, actor, "hold-add", hold)
    return hold


def remove(session: Session, ledger: ErasureLedger, hold_id: int, actor: str) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise HoldError(f"no legal hold {hold_id}")
    _audit(session, ledger, actor, "hold-remove", hold)
    session.delete(hold)
    return hold


def forget_ended(session: Session, address: str, now: datetime) -> int:
    """Delete the holds on this address that have ended (an erasure: the address goes everywhere)."""
    return affected(session.execute(delete(LegalHold).where(LegalHold.address == address, LegalHold.until <= now)))


def _audit(session: Session, ledger: ErasureLedger, actor: str, action: str, hold: LegalHold) -> None:
    """Counts and ids; an address only as its keyed hash; no reason (free text may name people)."""
    record(
        session,
        actor,
        action,
        ledger.hmac(hold.address) if hold.address else "",
        {"hold": hold.id, "ticket": hold.ticket_id, "until": hold.until.isoformat() if hold.until else None},
    )
