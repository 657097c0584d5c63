"""The retention rules, declared as data: what each one finds due, and what it does to one batch.

Each rule lists what is due now (ids, oldest first: the dry run shows them), leaving out what a
legal hold covers; `apply` does one batch in the caller's transaction, checking each id again
(mail may have arrived, a hold may have been added since the list was made). A rule is off when
its number of days is 0.

    spam         tickets in Spam with no activity for N days: purged
    automatic    tickets in Automatic (bounces, auto-replies no ticket took) idle for N days: purged
    trash        tickets in the Trash for N days: purged
    closed       tickets closed N days ago: deleted, or anonymised (empty shells kept for reporting)
    attachments  attachments of mail received N days ago: removed, a placeholder says so; the mail stays
    raw_mail     the raw bytes of mail received N days ago: removed; the message stays
    contacts     contacts no ticket or message points at any more: removed
    sweep        blob files and rows nothing counts, temporary files a crash left
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from models import Attachment, Blob, Contact, Message, RawMessage, Ticket
from models.db import Database
from retention.holds import Held
from tickets.store import MessageStore
from tickets.trash import TRASH, purge


@dataclass(frozen=True)
class Policy:
    """How long things are kept, in days (0: the rule is off)."""

    spam_days: int = 30
    automatic_days: int = 30
    trash_days: int = 30
    closed_days: int = 0
    closed_mode: Literal["delete", "anonymise"] = "delete"
    attachment_days: int = 0
    raw_mail_days: int = 0
    contacts: bool = True
    sweep: bool = True


@dataclass
class Context:
    """What a rule works with: the store, the policy, the time now, and what the holds cover."""

    db: Database
    store: MessageStore
    policy: Policy
    now: datetime
    held: Held

    def before(self, days: int) -> datetime:
        return self.now - timedelta(days=days)


@dataclass(frozen=True)
class TicketRule:
    """Tickets matching `where` (given the cutoff) go with every message, a batch of tickets per transaction."""

    name: str
    unit = "tickets"
    days: Callable[[Policy], int]
    where: Callable[[datetime], ColumnElement[bool]]
    age: Callable[[], QueryableAttribute]
    anonymise: Callable[[Policy], bool] = lambda policy: False

    def enabled(self, policy: Policy) -> bool:
        return self.days(policy) > 0

    def _matching(self, ctx: Context):
        query = select(Ticket.id).where(self.where(ctx.before(self.days(ctx.policy))))
        if self.anonymise(ctx.policy):
            query = query.where(Ticket.erased_at.is_(None))  # shells already
        return query

    def due(self, session: Session, ctx: Context) -> list[int]:
        rows = session.scalars(self._matching(ctx).order_by(self.age(), Ticket.id))
        return [t for t in rows if t not in ctx.held.tickets]

    def apply(self, session: Session, ctx: Context, ids: list[int]) -> dict[str, int]:
        still = [t for t in session.scalars(self._matching(ctx).where(Ticket.id.in_(ids))) if t not in ctx.held.tickets]
        if not still:
            return {}
        erased = purge(session, ctx.store, still, shells=self.anonymise(ctx.policy))
        return {
            "tickets": erased.tickets,
            "shells": erased.shells,
            "messages": erased.messages,
            "attachments": erased.attachments,
            "blobs": erased.blobs,
            "contacts": erased.contacts,
        }


def _idle(queue: str) -> Callable[[datetime], ColumnElement[bool]]:
    return lambda cutoff: and_(Ticket.queue == queue, Ticket.updated_at < cutoff)


def _closed_before(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        Ticket.status == "closed", func.coalesce(Ticket.closed_at, Ticket.updated_at) < cutoff, Ticket.queue != TRASH
    )


@dataclass(frozen=True)
class MessagePartRule:
    """Parts of old messages (attachments, raw bytes) go; the messages stay."""

    name: str
    unit: str
    days: Callable[[Policy], int]
    id_column: Callable[[], QueryableAttribute]
    message_column: Callable[[], QueryableAttribute]
    remove: Callable[[Session, Context, list[int]], int]

    def enabled(self, policy: Policy) -> bool:
        return self.days(policy) > 0

    def _matching(self, ctx: Context):
        return (
            select(self.id_column(), self.message_column())
            .join(Message, Message.id == self.message_column())
            .where(Message.received_at < ctx.before(self.days(ctx.policy)))
        )

    def _unheld(self, session: Session, ctx: Context, rows) -> list[int]:
        held = ctx.held.messages(session) if ctx.held.holds else set()
        return [i for i, message_id in rows if message_id not in held]

    def due(self, session: Session, ctx: Context) -> list[int]:
        return self._unheld(session, ctx, session.execute(self._matching(ctx).order_by(self.id_column())).all())

    def apply(self, session: Session, ctx: Context, ids: list[int]) -> dict[str, int]:
        rows = session.execute(self._matching(ctx).where(self.id_column().in_(ids))).all()
        return {self.unit: self.remove(session, ctx, self._unheld(session, ctx, rows))}


_UNUSED_CONTACT = and_(
    ~exists().where(Ticket.contact_id == Contact.id), ~exists().where(Message.contact_id == Contact.id)
)


@dataclass(frozen=True)
class ContactRule:
    name: str = "contacts"
    unit = "contacts"

    def enabled(self, policy: Policy) -> bool:
        return policy.contacts

    def due(self, session: Session, ctx: Context, ids: list[int] | None = None) -> list[int]:
        query = select(Contact.id, Contact.address).where(_UNUSED_CONTACT).order_by(Contact.id)
        if ids is not None:
            query = query.where(Contact.id.in_(ids))
        return [i for i, address in session.execute(query) if address not in ctx.held.addresses]

    def apply(self, session: Session, ctx: Context, ids: list[int]) -> dict[str, int]:
        return {"contacts": ctx.store.drop_contacts(session, self.due(session, ctx, ids))}


@dataclass(frozen=True)
class SweepRule:
    """The store's sweep (its own transactions, folder by folder); the dry run lists the blob rows
    counting nothing (files no row counts are found only by the sweep itself)."""

    name: str = "sweep"
    unit = "blob files"

    def enabled(self, policy: Policy) -> bool:
        return policy.sweep

    def due(self, session: Session, ctx: Context) -> list[int]:
        return list(session.scalars(select(Blob.id).where(Blob.refcount <= 0).order_by(Blob.id)))

    def sweep(self, ctx: Context) -> dict[str, int]:
        swept = ctx.store.sweep(ctx.db)
        return {
            "blob files": swept["removed"],
            "temporary files": swept["temporary"],
            "missing blob files": swept["missing"],
        }


RULES = (
    TicketRule("spam", lambda p: p.spam_days, _idle("spam"), lambda: Ticket.updated_at),
    TicketRule("automatic", lambda p: p.automatic_days, _idle("automatic"), lambda: Ticket.updated_at),
    TicketRule(
        "trash",
        lambda p: p.trash_days,
        lambda cutoff: and_(Ticket.queue == TRASH, Ticket.trashed_at < cutoff),
        lambda: Ticket.trashed_at,
    ),
    TicketRule(
        "closed",
        lambda p: p.closed_days,
        _closed_before,
        lambda: Ticket.closed_at,
        anonymise=lambda p: p.closed_mode == "anonymise",
    ),
    MessagePartRule(
        "attachments",
        "attachments",
        lambda p: p.attachment_days,
        lambda: Attachment.id,
        lambda: Attachment.message_id,
        lambda session, ctx, ids: ctx.store.strip_attachments(session, ids, ctx.now),
    ),
    MessagePartRule(
        "raw_mail",
        "raw messages",
        lambda p: p.raw_mail_days,
        lambda: RawMessage.message_id,
        lambda: RawMessage.message_id,
        lambda session, ctx, ids: ctx.store.drop_raw(session, ids),
    ),
    ContactRule(),  # after the rules that remove tickets, so it finds the contacts they left
    SweepRule(),  # last: the blobs the others released
)
RULE_NAMES = tuple(rule.name for rule in RULES)
