"""Mail Postdesk sends on its own: the auto-acknowledgement of a new ticket, and notifications to
agents (a new ticket in their departments, a ticket assigned to them), each as the agent chose on
their account page. All of it goes through the outbox.

The auto-acknowledgement is stored in the ticket's thread (the customer got it) with a signed
Message-ID, so an answer to it threads back; it carries `Auto-Submitted: auto-replied` (RFC 3834),
so another robot does not answer it. Which mail gets one is the pipeline's decision
(`ingest.answering`); how many a sender gets a day is capped here. A notification is not part of
any thread: it is kept in its outbox row, hanging on the message it tells of.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from models.db import count
from models import Agent, AgentDepartment, Message, NotificationChoice, OutboxMail, Recipient, Ticket
from tickets import compose, outbox
from tickets.compose import Headers
from tickets.replies import ReplyError, mailbox_of, outbound_record
from tickets.signing import MessageIdSigner
from tickets.store import Writes

SENDER_NAME = "Postdesk"


@dataclass(frozen=True)
class Acknowledgement:
    """A mailbox's auto-acknowledgement; `{ticket}` and `{subject}` in either text are filled in."""

    subject: str
    text: str


@dataclass(frozen=True)
class Links:
    """What a notification needs to point at the ticket and name itself."""

    web_url: str  # ends with /
    hostname: str


def acknowledgements_today(session: Session, address: str, now: datetime) -> int:
    """Auto-acknowledgements queued for `address` in the last 24 hours."""
    return count(
        session,
        select(func.count(OutboxMail.id))
        .join(Recipient, Recipient.message_id == OutboxMail.message_id)
        .where(
            Recipient.address == address,
            Recipient.kind == "envelope",
            OutboxMail.kind == "acknowledgement",
            OutboxMail.created_at >= now - timedelta(days=1),
        ),
    )


def acknowledge(
    writes: Writes,
    signer: MessageIdSigner,
    ack: Acknowledgement,
    *,
    ticket_id: int,
    requester: tuple[str, str],
    subject: str,
    answering: str,
    earlier: list[str],
    now: datetime,
) -> int:
    """Write the acknowledgement of a new ticket into its thread and queue it; its message id."""
    session = writes.session
    ticket = session.get_one(Ticket, ticket_id)
    mailbox = mailbox_of(session, ticket)
    fill = {"{ticket}": str(ticket_id), "{subject}": subject.strip() or "(no subject)"}
    title, text = _filled(ack.subject, fill), _filled(ack.text, fill).strip() + "\n"
    headers = Headers(signer.make(ticket_id), [answering] if answering else [], compose.references(answering, earlier))
    raw = compose.mail(
        sender=(SENDER_NAME, mailbox),
        to=[requester],
        subject=title,
        body=text,
        headers=headers,
        now=now,
        extra={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    message_id = writes.write(
        outbound_record(
            raw,
            headers,
            ticket,
            mailbox,
            SENDER_NAME,
            [requester],
            [],
            title,
            text,
            now,
            "acknowledgement",
            source="auto",
        )
    )
    outbox.queue(session, "acknowledgement", message_id, mailbox)
    return message_id


# The active agents of a department who asked to be emailed of its new tickets.
_WATCHERS = (
    select(Agent.id, Agent.name, Agent.email)
    .join(NotificationChoice, NotificationChoice.agent_id == Agent.id)
    .join(AgentDepartment, AgentDepartment.agent_id == Agent.id)
    .where(AgentDepartment.department_id == bindparam("department"), NotificationChoice.new_ticket, Agent.active)
)


def new_ticket_watchers(session: Session, department_id: int | None) -> list[Row]:
    """Who `notify_new_ticket` emails of a new ticket in this department (id, name, email)."""
    return [] if department_id is None else list(session.execute(_WATCHERS, {"department": department_id}).all())


def notify_new_ticket(
    session: Session, ticket_id: int, message_id: int, watchers: list[Row], links: Links, now: datetime
) -> int:
    """Email each of the `watchers` of the ticket's department (`new_ticket_watchers`); how many were queued."""
    for agent in watchers:
        _notice(session, ticket_id, message_id, agent, "New ticket", links, now)
    return len(watchers)


def notify_assigned(
    session: Session, ticket_id: int, agent_id: int, links: Links, now: datetime, by_agent_id: int | None = None
) -> bool:
    """Email `agent_id` that the ticket is now theirs, if they asked for it (and did not assign it to
    themselves); whether a notification was queued. Call it in the transaction that assigns."""
    if agent_id == by_agent_id:
        return False
    agent = session.execute(
        select(Agent.id, Agent.name, Agent.email)
        .join(NotificationChoice, NotificationChoice.agent_id == Agent.id)
        .where(Agent.id == agent_id, NotificationChoice.assigned, Agent.active)
    ).first()
    opener = session.scalar(select(func.min(Message.id)).where(Message.ticket_id == ticket_id))
    if agent is None or opener is None:
        return False
    _notice(session, ticket_id, opener, agent, "Assigned to you", links, now)
    return True


def choices(session: Session, agent_id: int) -> NotificationChoice:
    return session.get(NotificationChoice, agent_id) or NotificationChoice(
        agent_id=agent_id, new_ticket=False, assigned=False
    )


def choose(session: Session, agent_id: int, *, new_ticket: bool, assigned: bool) -> None:
    row = session.get(NotificationChoice, agent_id)
    if row is None:
        session.add(NotificationChoice(agent_id=agent_id, new_ticket=new_ticket, assigned=assigned))
    else:
        row.new_ticket, row.assigned = new_ticket, assigned


def _notice(session: Session, ticket_id: int, message_id: int, agent, what: str, links: Links, now: datetime) -> None:
    ticket = session.get_one(Ticket, ticket_id)
    try:
        mailbox = mailbox_of(session, ticket)
    except ReplyError:  # a ticket without a mailbox to send from: nobody is told
        return
    subject = f"[#{ticket_id}] {what}: {ticket.subject or '(no subject)'}"
    body = f"{what}: #{ticket_id} {ticket.subject}\n\n{links.web_url}tickets/{ticket_id}\n"
    raw = compose.mail(
        sender=(SENDER_NAME, mailbox),
        to=[(agent.name, agent.email)],
        subject=subject,
        body=body,
        headers=Headers(compose.notification_id(links.hostname), [], []),
        now=now,
        extra={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    outbox.queue(session, "notification", message_id, mailbox, agent_id=agent.id, raw=raw)


def _filled(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(name, value)
    return template
