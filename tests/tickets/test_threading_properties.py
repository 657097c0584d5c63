"""Threading invariants over random conversations, through the real spool, runner and pipeline.

Hypothesis writes sequences of messages — senders from a small pool (one of them our own
address, one a mailing list), References/In-Reply-To pointing at earlier Message-IDs, unknown
ones, our signed ids or forged ones, [#N] subject tokens, Auto-Submitted headers, exact and
Message-ID-only duplicates — drains them in random batches and closes tickets in between. After
each conversation the whole store must hold:

- a message is on a ticket unless its rule is "none" (our own or looping mail), and then it is not;
- a ticket links only to an older ticket (so never to itself, and links never form a cycle);
- "new" starts its ticket, and a "new" message that pointed at a stored ticket is linked to one;
- "reference"/"token" join only when the sender already took part in that ticket (From/To/Cc of
  an earlier message there), or, for "reference", the referenced message came through the same
  List-Id: a stranger never joins by either rule;
- "signed" joins exactly the ticket named by a signed id that verifies;
- a closed ticket is open again iff a non-automatic message joined it after it was closed.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage

from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from models import Message, Ticket
from models.base import utcnow
from models.mail.envelope import Envelope
from postdesk.app import App

SENDERS = [
    "alice@example.org",
    "Alice <ALICE@Example.ORG>",
    "bob@example.org",
    "carol@example.net",
    "mallory@evil.example",
    "announce@lists.example",
    "support@example.com",
]
LIST_ID = "Users <users.lists.example>"
AUTO = [None, None, None, "auto-replied", "auto-generated", "no"]
TOKEN = re.compile(r"\[#(\d{1,12})\]")
_run = itertools.count()


@dataclass
class Conversation:
    """What one example has sent so far, and the tickets it closed (ticket id → last message id then)."""

    prefix: str
    start: int  # the newest message id before this conversation
    message_ids: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (Message-ID, From) of each one written
    raws: list[bytes] = field(default_factory=list)
    closed: dict[int, int] = field(default_factory=dict)


def ticket_ids(app: App) -> list[int]:
    with app.db.read() as session:
        return list(session.scalars(select(Ticket.id).order_by(Ticket.id)))


def pick(data, items: list, fallback=None):
    """One of `items` by a drawn index: the draw has the same shape whatever the store holds."""
    index = data.draw(st.integers(0, 10**6))
    return items[index % len(items)] if items else fallback


def draw_reference(data, conv: Conversation, tickets: list[int], signer) -> str:
    kind = data.draw(st.sampled_from(["earlier"] * 4 + ["unknown", "signed", "forged"]))
    earlier = pick(data, conv.message_ids)
    ticket = pick(data, tickets, fallback=1)
    if kind == "earlier" and earlier:
        return earlier
    if kind == "signed":
        return signer.make(ticket)
    if kind == "forged":
        return f"pd.{ticket}.00000000.{'0' * 20}@postdesk.localhost"
    return f"{conv.prefix}.unknown{data.draw(st.integers(0, 5))}@elsewhere.example"


def draw_message(data, conv: Conversation, tickets: list[int], signer) -> tuple[bytes, str]:
    again = pick(data, conv.raws)
    if data.draw(st.integers(0, 9)) == 0 and again:  # the very same bytes again
        return again, ""
    sender = data.draw(st.sampled_from(SENDERS))
    answered = pick(data, conv.sent)
    if answered and data.draw(st.booleans()):  # a plain reply: its sender answers by In-Reply-To
        reply_to, sender = answered
    else:
        reply_to = None
    msg = EmailMessage()
    reused = pick(data, conv.message_ids)
    new_id = f"{conv.prefix}.{len(conv.raws)}@example.org"
    msg_id = reused if data.draw(st.integers(0, 9)) == 0 and reused else new_id
    token = ""
    if data.draw(st.booleans()):  # an existing ticket's number, or any number
        number = pick(data, tickets, fallback=0) if data.draw(st.booleans()) else data.draw(st.integers(0, 10**12 - 1))
        token = f"[#{number}] "
    msg["From"], msg["To"], msg["Message-ID"] = sender, "support@example.com", f"<{msg_id}>"
    msg["Subject"] = f"{data.draw(st.sampled_from(['', 'Re: ', 'AW: ']))}{token}Printer {conv.prefix}"
    if cc := data.draw(st.none() | st.sampled_from(SENDERS)):
        msg["Cc"] = cc
    references = [draw_reference(data, conv, tickets, signer) for _ in range(data.draw(st.integers(0, 3)))]
    if reply_to:
        references.append(reply_to)
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
        if data.draw(st.booleans()):
            msg["In-Reply-To"] = f"<{references[-1]}>"
    if auto := data.draw(st.sampled_from(AUTO)):
        msg["Auto-Submitted"] = auto
    if data.draw(st.integers(0, 5)) == 0 or "lists.example" in sender:
        msg["List-Id"] = LIST_ID
    if data.draw(st.integers(0, 19)) == 0:
        msg["X-Postdesk-Loop"] = "postdesk.localhost"
    msg.set_content(f"Body {len(conv.raws)}.")
    conv.sent.append((msg_id, sender))
    return msg.as_bytes().replace(b"\n", b"\r\n"), msg_id


def close_one(data, app: App, conv: Conversation) -> None:
    with app.db.read() as session:  # one of this conversation's tickets
        ours = sorted(
            set(
                session.scalars(
                    select(Message.ticket_id).where(Message.id > conv.start, Message.ticket_id.is_not(None))
                )
            )
        )
    ticket_id = pick(data, ours)
    days = data.draw(st.sampled_from([1, 45]))  # inside or outside the 30-day reopen window
    if ticket_id is None:
        return
    when = utcnow() - timedelta(days=days)
    with app.db.write() as session:
        session.execute(
            update(Ticket).where(Ticket.id == ticket_id).values(status="closed", closed_at=when, updated_at=when)
        )
        last = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
    conv.closed[ticket_id] = last


def participants_before(ticket_messages: list[Message], message: Message) -> set[str]:
    seen = set()
    for earlier in ticket_messages:
        if earlier.id < message.id:
            seen.add(earlier.from_address)
            seen.update(r.address for r in earlier.recipients if r.kind in ("to", "cc"))
    return seen


def check_invariants(app: App, signer, conv: Conversation) -> None:
    """Checks the messages this conversation stored (the store is shared by all examples)."""
    with app.db.read() as session:
        messages = session.scalars(select(Message).options(selectinload(Message.recipients)).order_by(Message.id)).all()
        tickets = {t.id: t for t in session.scalars(select(Ticket))}
    by_ticket: dict[int, list[Message]] = {}
    by_header: dict[str, list[Message]] = {}
    for m in messages:
        by_ticket.setdefault(m.ticket_id, []).append(m)
        by_header.setdefault(m.message_id_header, []).append(m)
    first_of = {t: ms[0].id for t, ms in by_ticket.items() if t is not None}

    for t in tickets.values():
        assert t.linked_ticket_id is None or t.linked_ticket_id < t.id, (t.id, t.linked_ticket_id)

    for m in (m for m in messages if m.id > conv.start):
        why = (m.id, m.thread_rule, m.from_address, m.subject, m.references, m.in_reply_to, m.flags)
        ours = {"loop", "from-ourselves"} & set(m.flags)
        assert (m.thread_rule == "none") == (m.ticket_id is None) == bool(ours), why
        if m.ticket_id is None:
            continue
        pointers = m.references + m.in_reply_to
        referenced = [e for r in set(pointers) for e in by_header.get(r, []) if e.id < m.id and e.ticket_id]
        if m.thread_rule == "signed":
            assert m.ticket_id in {signer.ticket_of(r) for r in pointers}, why
        elif m.thread_rule == "new":
            assert first_of[m.ticket_id] == m.id, why
            token = TOKEN.search(m.subject)
            by_token = token and int(token[1]) in first_of and first_of[int(token[1])] < m.id
            if referenced or by_token:
                assert tickets[m.ticket_id].linked_ticket_id is not None, why
        else:
            assert m.thread_rule in ("reference", "token"), why
            took_part = m.from_address in participants_before(by_ticket[m.ticket_id], m)
            same_list = (
                m.thread_rule == "reference"
                and m.list_id
                and any(e.ticket_id == m.ticket_id and e.list_id == m.list_id for e in referenced)
            )
            assert took_part or same_list, f"a stranger joined ticket {m.ticket_id}: {why}"

    for ticket_id, last in conv.closed.items():
        joined = [m for m in by_ticket.get(ticket_id, []) if m.id > last]
        human = any("automatic" not in m.flags for m in joined)
        assert tickets[ticket_id].status == ("open" if human else "closed"), (
            f"ticket {ticket_id}, closed after message {last}, then joined by",
            [(m.id, m.flags) for m in joined],
        )


# No shrinking: against a store that keeps growing it ran into Hypothesis's five-minute limit
# (and pytest's timeout); the failing conversation is printed as drawn, and each assertion names
# the message (id, rule, sender, subject, references, flags) that broke the invariant.
@hsettings(
    max_examples=30,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_threading_invariants_hold_for_random_conversations(desk, data):
    app, runner = desk
    signer = runner.services.signer
    with app.db.read() as session:
        start = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
    conv = Conversation(prefix=f"c{next(_run)}x{time.time_ns()}", start=start)
    for _ in range(data.draw(st.integers(1, 12), label="messages")):
        raw, msg_id = draw_message(data, conv, ticket_ids(app), signer)
        address = re.search(rb"^From: (?:.*<)?([^<>\s]+)", raw, re.M)[1].decode().lower()
        app.spool.put(raw, Envelope(mail_from=address, rcpt_tos=["support@example.com"]))
        conv.raws.append(raw)
        if msg_id:
            conv.message_ids.append(msg_id)
        if data.draw(st.booleans(), label="drain now"):
            runner.drain()
            if data.draw(st.booleans(), label="close a ticket"):
                close_one(data, app, conv)
    runner.drain()
    assert app.spool.depth() == {"new": 0, "cur": 0, "bad": 0}
    check_invariants(app, signer, conv)
