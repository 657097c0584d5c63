"""Helpers for the spam tests of the web view: a ledger taught as `postdesk spam train` would, and
mail of a kind, delivered over SMTP."""

from __future__ import annotations

from sqlalchemy import select

from classifier import ledger
from ingest.parse import parse
from models import Message, SpamVerdict, Ticket
from models.base import utcnow

SPAM_WORDS = "cheap pills casino winner lottery claim prize unsubscribe offer bonus".split()
HAM_WORDS = "invoice printer order refund account password delivery broken screen thanks".split()


def mail(n: int, kind: str, body: str | None = None, sender: str | None = None, to: str = "support@example.com",
         subject: str | None = None) -> bytes:
    words = SPAM_WORDS if kind == "spam" else HAM_WORDS
    sender = sender or (f"promo{n}@deals.example.biz" if kind == "spam" else f"customer{n}@example.org")
    text = body or " ".join(words[(n + i) % len(words)] for i in range(30))
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject or f'{kind} {n}'}\r\n"
            f"Message-ID: <{kind}-{n}-{abs(hash(text)) % 10**8}@example.org>\r\n\r\n{text}\r\n").encode()


def teach(app, n: int = 12) -> None:
    """`n` ham and `n` spam in the ledger, as a bootstrap corpus (no version saved)."""
    spam_filter = app.live_model().filter
    with app.db.write() as session:
        for i in range(n):
            for kind in ("ham", "spam"):
                features = spam_filter.features(parse(mail(1000 + i, kind), received_at=utcnow()))
                ledger.learn(session, f"raw:{kind}{i}", kind, features, "bootstrap")


def deliver(postdesk, raw: bytes, to: str = "support@example.com") -> int:
    """Send over SMTP and let the runner store it; the stored message's id."""
    assert postdesk.send(raw, to=to)[0] == 250
    postdesk.settle()
    with postdesk.app.db.read() as session:
        return session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1))


def verdict(postdesk, message_id: int) -> SpamVerdict:
    with postdesk.app.db.read() as session:
        return session.get(SpamVerdict, message_id)


def ticket(postdesk, message_id: int) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, session.get(Message, message_id).ticket_id)
