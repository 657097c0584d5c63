"""Helpers for the spam tests of the web view: a ledger taught as `postdesk spam train` would, and
mail of a kind, delivered over SMTP."""

from __future__ import annotations

import sys


from classifier import ledger
from models.mail.parse import parse
from models import Message, SpamVerdict, Ticket
from models.base import utcnow

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tickets")
from test_spam_flow import raw as mail  # noqa: E402  (the same synthetic ham and spam)
from test_pages import deliver  # noqa: E402, F401  (over SMTP, then the runner drains the spool)


def teach(app, n: int = 12) -> None:
    """`n` ham and `n` spam in the ledger, as a bootstrap corpus (no version saved)."""
    spam_filter = app.live_model().filter
    with app.db.write() as session:
        for i in range(n):
            for kind in ("ham", "spam"):
                features = spam_filter.features(parse(mail(1000 + i, kind), received_at=utcnow()))
                ledger.learn(session, f"raw:{kind}{i}", kind, features, "bootstrap")


def verdict(postdesk, message_id: int) -> SpamVerdict:
    with postdesk.app.db.read() as session:
        return session.get(SpamVerdict, message_id)


def ticket(postdesk, message_id: int) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, session.get(Message, message_id).ticket_id)
