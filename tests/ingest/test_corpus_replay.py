"""The shared corpus replayed over SMTP: every message stored once, on a ticket, list threads kept together."""

from __future__ import annotations

import smtplib

from sqlalchemy import func, select

from corpus import corpus_files, wire_bytes
from models import Message, Ticket
from models.mail.parse import raw_sha256


def test_the_corpus_replayed_over_smtp_is_stored_on_tickets(postdesk, corpus_dir):
    files = list(corpus_files(corpus_dir))
    distinct = set()
    with smtplib.SMTP("127.0.0.1", postdesk.port, timeout=60) as client:
        for _, path in files:
            raw = wire_bytes(path)
            distinct.add(raw_sha256(raw))
            client.sendmail("relay@example.org", ["support@example.com"], raw)
    postdesk.drain(timeout=300)
    with postdesk.app.db.read() as session:
        assert len(files) == 3000
        assert session.scalar(select(func.count()).select_from(Message)) == len(distinct)
        assert session.scalar(select(func.count()).where(Message.ticket_id.is_(None))) == 0
        by_id = {
            m: (i, t) for m, i, t in session.execute(select(Message.message_id_header, Message.id, Message.ticket_id))
        }
        links = dict(session.execute(select(Ticket.id, Ticket.linked_ticket_id)).all())
        replies = grouped = 0
        rows = session.execute(select(Message.id, Message.ticket_id, Message.references, Message.in_reply_to))
        for message_id, ticket_id, references, in_reply_to in rows:
            # a reply can only join a thread whose earlier message has arrived (the files are not in time order)
            parents = [by_id[r][1] for r in references + in_reply_to if r in by_id and by_id[r][0] < message_id]
            if parents:
                replies += 1
                grouped += parents[-1] in (ticket_id, links[ticket_id])
    assert replies > 100 and grouped == replies
