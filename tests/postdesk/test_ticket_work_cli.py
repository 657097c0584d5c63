"""`postdesk tickets status|assign|note|merge|move|split`: the web view's work on tickets from a shell,
with the same rules, an audit record naming the operating-system user, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from models import AuditEvent, Message, Ticket, TicketNote
from serve import settings_env


def postdesk_cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def mail(subject: str, reply_to: str = "") -> bytes:
    thread = f"In-Reply-To: <{reply_to}>\r\n" if reply_to else ""
    return (
        f"From: carla@example.org\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n{thread}\r\nHello.\r\n"
    ).encode()


def test_work_on_tickets_from_the_command_line(postdesk):
    postdesk.send(mail("First thing"))
    postdesk.send(mail("Second thing"))
    postdesk.send(mail("Re First thing", reply_to="First-thing@example.org"))
    postdesk.drain()
    settings = postdesk.settings
    with postdesk.app.db.read() as session:
        first, second, reply = session.execute(select(Message.id, Message.ticket_id).order_by(Message.id)).all()
    assert reply.ticket_id == first.ticket_id

    done = postdesk_cli(settings, "tickets", "status", str(first.ticket_id), "pending")
    assert done.returncode == 0 and done.stdout.strip() == f"ticket {first.ticket_id}: pending", done.stderr
    assert postdesk_cli(settings, "tickets", "note", str(first.ticket_id), "called her back").returncode == 0
    split = postdesk_cli(settings, "tickets", "split", str(reply.id))
    assert split.returncode == 0, split.stderr
    assert postdesk_cli(settings, "tickets", "merge", str(second.ticket_id), str(first.ticket_id)).returncode == 0

    wrong = postdesk_cli(settings, "tickets", "status", str(first.ticket_id), "done")
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: The status is one of new, open")
    missing = postdesk_cli(settings, "tickets", "merge", str(first.ticket_id), "999")
    assert missing.returncode == 1 and "no ticket 999" in missing.stderr and "Traceback" not in missing.stderr
    nobody = postdesk_cli(settings, "tickets", "assign", str(first.ticket_id), "ghost@example.com")
    assert nobody.returncode == 1 and "no agent ghost@example.com" in nobody.stderr

    with postdesk.app.db.read() as session:
        assert session.get(Ticket, second.ticket_id).merged_into_id == first.ticket_id
        assert session.get(Message, second.id).ticket_id == first.ticket_id
        assert session.get(Message, reply.id).ticket_id not in (first.ticket_id, second.ticket_id)
        assert session.scalar(select(TicketNote.body)) == "called her back"
        events = session.execute(select(AuditEvent.action, AuditEvent.actor).order_by(AuditEvent.id)).all()
    assert [a for a, _ in events] == ["ticket-status", "ticket-note", "message-split", "ticket-merge"]
    assert all(actor.startswith("os:") for _, actor in events)
