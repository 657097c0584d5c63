"""An agent's reply or forward: written as mail from the ticket's mailbox, stored in the thread
through the message store, and queued in the outbox in the same transaction.

A reply goes To the requester (the Reply-To or From of the message it answers) unless the agent
says otherwise, Cc whoever the agent adds, and with "reply all" everyone the answered message
named but us. It carries our signed Message-ID, In-Reply-To and References, so the customer's
answer threads back whoever sends it; whoever it goes To becomes an "answered" contact, whom the
spam model alone never puts in Spam again (`classifier.judge`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Contact, Mailbox, Message, RawMessage, Ticket
from tickets import compose, outbox
from models.mail.message import Part
from tickets.compose import Headers
from tickets.signing import MessageIdSigner
from tickets.store import Addressee, MessageRecord, MessageStore

MAX_BODY = 200_000  # characters of an agent's text


class ReplyError(ValueError):
    """Why a reply or forward cannot be sent as given (shown to the agent)."""


@dataclass
class Draft:
    """What the agent wrote. `to` empty: the requester; `answering` None: the newest message we received."""

    ticket_id: int
    body: str
    to: str = ""
    cc: str = ""
    reply_all: bool = False
    answering: int | None = None
    files: list[Part] = field(default_factory=list)


@dataclass(frozen=True)
class Outgoing:
    """Who sends: the agent's name as it appears, and our own addresses (never mailed by a reply)."""

    signer: MessageIdSigner
    ours: frozenset[str]
    sender_name: str


def default_recipients(
    session: Session,
    ticket_id: int,
    answering: int | None = None,
    reply_all: bool = False,
    ours: frozenset[str] = frozenset(),
) -> tuple[str, str]:
    """The To and Cc fields a reply form starts with."""
    answered = _answered(session, ticket_id, answering)
    to = _requester(session, ticket_id, answered)
    cc = _everyone_else(answered, {a for _, a in to} | ours) if reply_all and answered else []
    return _field(to), _field(cc)


def send_reply(session: Session, store: MessageStore, draft: Draft, who: Outgoing, now: datetime) -> int:
    """Store the reply in its ticket and queue it; the id of its message. ReplyError when it cannot go."""
    ticket = session.get_one(Ticket, draft.ticket_id)
    answered = _answered(session, ticket.id, draft.answering)
    to = _typed(draft.to, who.ours) if draft.to.strip() else _requester(session, ticket.id, answered)
    cc = _typed(draft.cc, who.ours)
    if draft.reply_all and answered is not None:
        cc += _everyone_else(answered, set(who.ours))
    cc = _unique(cc, {a for _, a in to})
    if not to:
        raise ReplyError("a reply needs someone to go to")
    body = _body(draft.body)
    subject = _re(answered.subject if answered else ticket.subject, ticket.id)
    headers = Headers(
        who.signer.make(ticket.id),
        [answered.message_id_header] if answered and _has_id(answered) else [],
        compose.references(answered.message_id_header, answered.references) if answered else [],
    )
    mailbox = mailbox_of(session, ticket)
    raw = compose.mail(
        sender=(who.sender_name, mailbox),
        to=to,
        cc=cc,
        subject=subject,
        body=body,
        headers=headers,
        now=now,
        files=draft.files,
    )
    with store.batch(session) as writes:
        message_id = writes.write(
            outbound_record(
                raw, headers, ticket, mailbox, who.sender_name, to, cc, subject, body, now, "reply", draft.files
            )
        )
        answered_ids = [writes.contact_id(address, name) for name, address in to]
    session.execute(update(Contact).where(Contact.id.in_(answered_ids)).values(answered=True))
    if ticket.status == "new":
        ticket.status = "open"
    outbox.queue(session, "reply", message_id, mailbox)
    return message_id


def send_forward(
    session: Session, store: MessageStore, message_id: int, to: str, note: str, who: Outgoing, now: datetime
) -> int:
    """Forward a stored message, as it arrived (attached whole), to an outside address; stored in its ticket."""
    original = session.get_one(Message, message_id)
    ticket = session.get_one(Ticket, original.ticket_id)
    recipients = _typed(to, who.ours)
    if not recipients:
        raise ReplyError("a forward needs an address to go to")
    raw_original = session.scalar(select(RawMessage.raw).where(RawMessage.message_id == message_id))
    subject = "Fwd: " + (original.subject or ticket.subject)
    headers = Headers(who.signer.make(ticket.id), [], [])
    mailbox = mailbox_of(session, ticket)
    body = note.strip()[:MAX_BODY] + "\n" if note.strip() else "Forwarded message attached.\n"
    raw = compose.mail(
        sender=(who.sender_name, mailbox),
        to=recipients,
        subject=subject,
        body=body,
        headers=headers,
        now=now,
        forwarded=raw_original,
    )
    attached = [Part("forwarded.eml", "message/rfc822", raw_original or b"")]
    forward_id = store.write(
        session,
        outbound_record(
            raw, headers, ticket, mailbox, who.sender_name, recipients, [], subject, body, now, "forward", attached
        ),
    )
    outbox.queue(session, "forward", forward_id, mailbox)
    return forward_id


def outbound_record(
    raw: bytes,
    headers: Headers,
    ticket: Ticket,
    mailbox: str,
    sender_name: str,
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    subject: str,
    body: str,
    now: datetime,
    kind: str,
    files: Sequence[Part] = (),
    source: str = "web",
) -> MessageRecord:
    """A message we send, as the message store keeps it (its envelope recipients are To and Cc)."""
    envelope = _unique(to + cc, set())
    recipients = [Addressee("envelope", a, "") for _, a in envelope]
    recipients += [Addressee("to", a, n[:400]) for n, a in to] + [Addressee("cc", a, n[:400]) for n, a in cc]
    return MessageRecord(
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        spool_id="",
        source=source,
        received_at=now,
        envelope_from=mailbox,
        recipients=recipients,
        message_id=headers.message_id,
        date=now,
        in_reply_to=headers.in_reply_to,
        references=headers.references,
        list_id="",
        subject=subject,
        from_address=mailbox,
        from_name=sender_name,
        text_body=body,
        html_body="",
        upstream={},
        attachments=files,
        mailbox_id=ticket.mailbox_id,
        flags=[],
        thread_rule=kind,
        ticket_id=ticket.id,
        direction="out",
    )


def _answered(session: Session, ticket_id: int, answering: int | None) -> Message | None:
    """The message a reply answers: the one named (if it is in this ticket), else the newest we received."""
    query = select(Message).where(Message.ticket_id == ticket_id)
    if answering is not None:
        found = session.scalars(query.where(Message.id == answering)).first()
        if found is not None:
            return found
    return session.scalars(query.where(Message.direction == "in").order_by(Message.id.desc()).limit(1)).first()


def _requester(session: Session, ticket_id: int, answered: Message | None) -> list[tuple[str, str]]:
    if answered is not None and answered.direction == "in":
        reply_to = [(r.name, r.address) for r in answered.recipients if r.kind == "reply-to"]
        if reply_to:
            return reply_to
        if answered.from_address:
            return [(answered.from_name, answered.from_address)]
    contact = session.scalar(
        select(Contact).join(Ticket, Ticket.contact_id == Contact.id).where(Ticket.id == ticket_id)
    )
    return [(contact.name, contact.address)] if contact is not None else []


def _everyone_else(answered: Message, leave_out: set[str]) -> list[tuple[str, str]]:
    named = [(answered.from_name, answered.from_address)] if answered.direction == "in" else []
    named += [(r.name, r.address) for r in answered.recipients if r.kind in ("to", "cc")]
    return _unique(named, leave_out)


def _typed(text: str, ours: frozenset[str]) -> list[tuple[str, str]]:
    try:
        return _unique(compose.addresses(text), set(ours))
    except compose.AddressError as exc:
        raise ReplyError(str(exc)) from None


def _unique(found: list[tuple[str, str]], leave_out: set[str]) -> list[tuple[str, str]]:
    seen, unique = set(leave_out), []
    for name, address in found:
        if address and address not in seen:
            seen.add(address)
            unique.append((name, address))
    return unique


def _field(found: list[tuple[str, str]]) -> str:
    return ", ".join(address for _, address in found)


def _body(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ReplyError("the reply is empty")
    if len(text) > MAX_BODY:
        raise ReplyError(f"the text is longer than {MAX_BODY} characters")
    return text + "\n"


def _re(subject: str, ticket_id: int) -> str:
    subject = subject.strip() or "(no subject)"
    if f"[#{ticket_id}]" not in subject:
        subject = f"{subject} [#{ticket_id}]"
    return subject if subject.lower().startswith("re:") else "Re: " + subject


def _has_id(message: Message | None) -> bool:
    return message is not None and bool(message.message_id_header)


def mailbox_of(session: Session, ticket: Ticket) -> str:
    """The address the ticket came in to (else its department's first mailbox): replies come from it."""
    address = None
    if ticket.mailbox_id is not None:
        address = session.scalar(select(Mailbox.address).where(Mailbox.id == ticket.mailbox_id))
    address = address or session.scalar(
        select(Mailbox.address).where(Mailbox.department_id == ticket.department_id).order_by(Mailbox.id).limit(1)
    )
    if address is None:
        raise ReplyError("this ticket has no mailbox to answer from")
    return address
