"""Erasing messages: everything `Writes` made for them, and nothing a surviving message still uses.

Gone with a message: its row and, by the foreign keys' cascades, its raw bytes, recipients,
attachments (a trigger takes one off each blob's count), verdict and IMAP copy; whatever the spam
filter learned from it, forgotten first (`classifier.forgetting`: its ledger row and events, and
its counts in the live model and every saved version; a learned message cannot be deleted before:
no ON DELETE action). Then what it brought along and nothing else uses any more: a participant no
surviving message of its ticket names, a ticket without messages (or, with `shells`, the ticket
kept without its subject, contact, participants and notes, marked erased; a note on a surviving
ticket naming an erased message's sender goes too), a contact no message or ticket
points at, and a surviving ticket's subject when it was this message's (the next message's subject
takes its place). Blobs whose count reaches zero are removed, files too, after the commit
(`tickets.store.blobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.orm import Session

from classifier.forgetting import forget
from models import (
    Attachment,
    Blob,
    Contact,
    Message,
    Recipient,
    Ticket,
    TicketNote,
    TicketParticipant,
)
from models.blobstore import BlobStore
from models.base import table, utcnow
from models.db import count
from tickets.store.blobs import release_after_commit
from tickets.store.copies import rows_hanging_on
from tickets.store.labels import spam_keys
from tickets.store.record import Erased, StoreHook
from tickets.store.sql import Statement

_CHUNK = 500  # ids per lookup, well under SQLite's bound-parameter limit
_NAMED = ("to", "cc")  # the recipients that take part in a ticket, with the sender
_M, _T, _C, _P = table(Message), table(Ticket), table(Contact), table(TicketParticipant)
_N = table(TicketNote)

_DELETE_MESSAGE = Statement(_M.delete().where(_M.c.id == bindparam("id")))
_DELETE_TICKET = Statement(_T.delete().where(_T.c.id == bindparam("id")))
_SHELL_TICKET = Statement(
    _T.update()
    .where(_T.c.id == bindparam("id"))
    .values(subject="", contact_id=None, erased_at=bindparam("now", type_=_T.c.erased_at.type))
)
_DELETE_NOTE = Statement(_N.delete().where(_N.c.id == bindparam("id")))
_DELETE_NOTES = Statement(_N.delete().where(_N.c.ticket_id == bindparam("ticket_id")))
_DELETE_PARTICIPANTS = Statement(_P.delete().where(_P.c.ticket_id == bindparam("ticket_id")))
_DELETE_PARTICIPANT = Statement(
    _P.delete().where(_P.c.ticket_id == bindparam("ticket_id"), _P.c.address == bindparam("address"))
)
_OLDEST_SUBJECT = (
    select(func.substr(_M.c.subject, 1, 1000))
    .where(_M.c.ticket_id == bindparam("ticket_id"))
    .order_by(_M.c.id)
    .limit(1)
    .scalar_subquery()
)
_RESUBJECT = Statement(
    _T.update()
    .where(_T.c.id == bindparam("ticket_id"), _T.c.subject == bindparam("subject"))
    .values(subject=_OLDEST_SUBJECT)
)
_DELETE_CONTACT = Statement(
    _C.delete().where(  # unless a message or ticket still points at it
        _C.c.id == bindparam("id"),
        ~exists().where(_M.c.contact_id == _C.c.id),
        ~exists().where(_T.c.contact_id == _C.c.id),
    )
)


def erase(
    session: Session,
    blobs: BlobStore,
    hooks: Sequence[StoreHook],
    spam_dir: Path | None,
    message_ids: Sequence[int],
    shells: bool = False,
) -> Erased:
    erased = Erased()
    ids = sorted(set(message_ids))
    for i in range(0, len(ids), _CHUNK):
        _erase_chunk(session, blobs, hooks, spam_dir, ids[i : i + _CHUNK], erased, shells)
    return erased


def _erase_chunk(
    session: Session,
    blobs: BlobStore,
    hooks: Sequence[StoreHook],
    spam_dir: Path | None,
    ids: list[int],
    erased: Erased,
    shells: bool,
) -> None:
    messages = session.execute(
        select(
            Message.id,
            Message.ticket_id,
            Message.contact_id,
            Message.from_address,
            Message.subject,
            Message.thread_rule,
            Message.raw_sha256,
        ).where(Message.id.in_(ids))
    ).all()
    ids = [m.id for m in messages]
    if not ids:
        return
    _forget_learned(session, spam_dir, messages, erased)
    for hook in hooks:
        hook.erasing(session, ids)
    brought_in = brought(session, messages)
    blob_ids = set(session.scalars(select(Attachment.blob_id).where(Attachment.message_id.in_(ids))))
    _count_cascades(session, ids, erased)
    erased.messages += _DELETE_MESSAGE.many(session, [{"id": i} for i in ids])
    tickets = {m.ticket_id for m in messages if m.ticket_id is not None}
    surviving = set(session.scalars(select(Message.ticket_id).where(Message.ticket_id.in_(tickets)).distinct()))
    gone = tickets - surviving
    contacts = {m.contact_id for m in messages} | set(
        session.scalars(select(Ticket.contact_id).where(Ticket.id.in_(gone)))
    )
    (_shell_tickets if shells else _drop_tickets)(session, gone, erased)
    _drop_participants(session, {(t, a) for t, a in brought_in if t in surviving}, erased)
    _drop_notes_naming(session, {(m.ticket_id, m.from_address) for m in messages if m.ticket_id in surviving}, erased)
    _replace_subjects(session, [m for m in messages if m.thread_rule == "new" and m.ticket_id in surviving])
    drop_contacts(session, {c for c in contacts if c is not None}, erased)
    zero = session.scalars(select(Blob.sha256).where(Blob.id.in_(blob_ids), Blob.refcount <= 0)).all()
    erased.blobs += len(zero)
    release_after_commit(session, blobs, zero)


def _forget_learned(session: Session, spam_dir: Path | None, messages: Sequence, erased: Erased) -> None:
    """Whatever the spam filter learned from these messages: as stored mail, or as the same bytes
    learned from a file (`postdesk spam learn FILE`, keyed by the raw sha256)."""
    forgotten = forget(session, spam_dir, spam_keys([(m.id, m.raw_sha256) for m in messages]))
    erased.spam_labels += forgotten.labels
    erased.spam_events += forgotten.events
    erased.spam_versions += forgotten.versions


def brought(session: Session, messages: Sequence) -> set[tuple[int, str]]:
    """(ticket, address) of each participant these messages name: sender, To and Cc."""
    brought = {(m.ticket_id, m.from_address) for m in messages if m.ticket_id is not None and m.from_address}
    named = (
        select(Message.ticket_id, Recipient.address)
        .join(Recipient, Recipient.message_id == Message.id)
        .where(Message.id.in_([m.id for m in messages]), Message.ticket_id.is_not(None), Recipient.kind.in_(_NAMED))
    )
    return brought | set(map(tuple, session.execute(named).all()))


def _count_cascades(session: Session, ids: list[int], erased: Erased) -> None:
    """What the foreign keys' cascades will remove with the messages."""
    for name, n in rows_hanging_on(session, ids).items():
        setattr(erased, name, getattr(erased, name) + n)


def _drop_tickets(session: Session, tickets: set[int], erased: Erased) -> None:
    """Delete these tickets (their participants go by the cascade)."""
    if tickets:
        erased.participants += count(
            session, select(func.count()).select_from(TicketParticipant).where(TicketParticipant.ticket_id.in_(tickets))
        )
        erased.notes += count(
            session, select(func.count()).select_from(TicketNote).where(TicketNote.ticket_id.in_(tickets))
        )
        erased.tickets += _DELETE_TICKET.many(session, [{"id": t} for t in sorted(tickets)])


def _shell_tickets(session: Session, tickets: set[int], erased: Erased) -> None:
    """Tickets left without messages stay, for reporting, as shells: status, queue, department and
    dates kept; no subject, contact, participants or notes."""
    if tickets:
        rows = [{"ticket_id": t} for t in sorted(tickets)]
        erased.participants += _DELETE_PARTICIPANTS.many(session, rows)
        erased.notes += _DELETE_NOTES.many(session, rows)
        erased.shells += _SHELL_TICKET.many(session, [{"id": t, "now": utcnow()} for t in sorted(tickets)])


def _drop_participants(session: Session, candidates: set[tuple[int, str]], erased: Erased) -> None:
    erased.participants += _DELETE_PARTICIPANT.many(
        session, [{"ticket_id": t, "address": a} for t, a in sorted(unneeded(session, candidates))]
    )


def unneeded(session: Session, candidates: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of `candidates` (ticket, address) no message on the ticket names any more."""
    if not candidates:
        return set()
    tickets, addresses = {t for t, _ in candidates}, {a for _, a in candidates}
    left = select(Message.ticket_id, Message.from_address).where(
        Message.ticket_id.in_(tickets), Message.from_address.in_(addresses)
    )
    left_named = (
        select(Message.ticket_id, Recipient.address)
        .join(Recipient, Recipient.message_id == Message.id)
        .where(Message.ticket_id.in_(tickets), Recipient.address.in_(addresses), Recipient.kind.in_(_NAMED))
    )
    still = set(map(tuple, session.execute(left).all())) | set(map(tuple, session.execute(left_named).all()))
    return candidates - still


def _drop_notes_naming(session: Session, senders: set[tuple[int, str]], erased: Erased) -> None:
    """Notes on a surviving ticket that name the address of someone whose messages left it: agents
    write about the customer in them, so they go with the customer's mail."""
    senders = {(t, a) for t, a in senders if a}
    if not senders:
        return
    notes = session.execute(
        select(TicketNote.id, TicketNote.ticket_id, TicketNote.body).where(
            TicketNote.ticket_id.in_({t for t, _ in senders})
        )
    ).all()
    naming = [n.id for n in notes if any(t == n.ticket_id and a in n.body.lower() for t, a in senders)]
    erased.notes += _DELETE_NOTE.many(session, [{"id": i} for i in naming])


def _replace_subjects(session: Session, openers: list) -> None:
    """A surviving ticket whose subject came from the erased message that opened it takes the
    subject of its oldest message left (an agent's own subject stays)."""
    _RESUBJECT.many(session, [{"ticket_id": m.ticket_id, "subject": m.subject[:1000]} for m in openers])


def drop_contacts(session: Session, contacts: set[int], erased: Erased) -> None:
    """Those contacts of the erased messages and tickets that no message or ticket points at any more."""
    erased.contacts += _DELETE_CONTACT.many(session, [{"id": c} for c in sorted(contacts)])
