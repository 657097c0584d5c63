"""What a new ticket sets off, on mail that arrived over SMTP and delivered to a real relay: the
mailbox's auto-acknowledgement (never to automatic mail, bounces, lists or spam; capped per sender
a day; answered back into the ticket), and the notifications agents chose on their account page
(a new ticket in their department; assignment, in the web view or `tickets assign`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.outbound import OutboxSender
from models import Message, OutboxMail, Ticket
from models.base import utcnow
from relay import TestRelay
from tickets import notify
from webhelp import browser, clock, csrf_of, db, make_agent, sign_in, web  # noqa: F401

DATA = Path(__file__).resolve().parents[1] / "data"
SPAMMER = "offers@spam.example"


@pytest.fixture
def settings(settings):
    boxes = [
        m.model_copy(update={"acknowledgement": "Thank you. Your ticket is number {ticket}."})
        if m.address == "support@example.com"
        else m
        for m in settings.mailboxes
    ]
    return settings.model_copy(
        update={
            "mailboxes": boxes,
            "acknowledgement_daily_cap": 2,
            "spam_block": [SPAMMER],
            "web_public_url": "https://desk.example.com",
        }
    )


@pytest.fixture
def relay():
    relay = TestRelay()
    yield relay
    relay.stop()


def mail(sender: str, subject: str, extra: str = "", to: str = "support@example.com") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@x.example>\r\n{extra}\r\nHello.\r\n"
    ).encode()


def deliver(postdesk, *raws: bytes, to: str = "support@example.com") -> None:
    for raw in raws:
        code, _ = postdesk.send(raw, to=to)
        assert code == 250
    postdesk.drain()


def sent(postdesk, relay: TestRelay):
    OutboxSender(postdesk.app.db, relay.config()).send_due()
    return relay.received


def test_a_new_ticket_is_acknowledged_once_with_auto_submitted_and_the_answer_threads_back(postdesk, relay):
    deliver(postdesk, mail("Carla <carla@example.org>", "Printer broken"))
    [ack] = sent(postdesk, relay)
    msg = ack.message
    with postdesk.app.db.read() as session:
        ticket_id = session.scalar(select(Ticket.id))
        stored = session.scalars(select(Message).where(Message.direction == "out")).one()
    assert ack.rcpt_tos == ["carla@example.org"] and ack.mail_from == "support@example.com"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["In-Reply-To"] == "<Printer.broken@x.example>"
    assert msg["Subject"] == f"Re: Printer broken [#{ticket_id}]"
    assert f"Your ticket is number {ticket_id}." in msg.get_content()
    assert stored.ticket_id == ticket_id and stored.thread_rule == "acknowledgement"

    deliver(postdesk, mail("carla@example.org", "Re: Printer broken", f"In-Reply-To: {msg['Message-ID']}\r\n"))
    with postdesk.app.db.read() as session:
        answer = session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert (answer.ticket_id, answer.thread_rule) == (ticket_id, "signed")
    assert len(sent(postdesk, relay)) == 1, "an answer on the ticket is not acknowledged again"


def test_automatic_mail_bounces_lists_spam_and_mailboxes_without_a_text_get_no_acknowledgement(postdesk, relay):
    deliver(
        postdesk,
        mail("robot@example.org", "Out of office", "Auto-Submitted: auto-replied\r\n"),
        (DATA / "bounce-delivery-status.eml").read_bytes(),
        mail("list@example.org", "Digest", "List-Id: <news.example.org>\r\n"),
        mail(SPAMMER, "Cheap pills"),
    )
    deliver(postdesk, mail("dora@example.org", "Invoice", to="billing@example.com"), to="billing@example.com")
    with postdesk.app.db.read() as session:
        assert session.scalar(select(Ticket.queue).join(Message).where(Message.from_address == SPAMMER)) == "spam"
    assert sent(postdesk, relay) == []


def test_acknowledgements_are_capped_per_sender_per_day(postdesk, relay):
    deliver(postdesk, *(mail("eager@example.org", f"Question {n}") for n in range(3)))  # one batch
    deliver(postdesk, mail("eager@example.org", "Question 4"), mail("calm@example.org", "Once"))
    got = sent(postdesk, relay)
    assert sorted(r.rcpt_tos[0] for r in got) == ["calm@example.org", "eager@example.org", "eager@example.org"]


def test_agents_are_emailed_of_new_tickets_in_their_departments_as_they_chose(postdesk, web, db, clock, relay):
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    bill = make_agent(db, "bill@example.com", departments=["Billing"])
    quiet = make_agent(db, "quiet@example.com", departments=["Support"])
    for person, address in ((sam, "198.51.100.7"), (bill, "198.51.100.8")):
        client = browser(web, address=address)
        sign_in(client, person, clock)
        token = csrf_of(client.get("/account").text)
        assert client.post("/account/notifications", data={"csrf": token, "new_ticket": "on"}).status_code == 303
        assert "checked" in client.get("/account").text
    deliver(postdesk, mail("carla@example.org", "Printer broken"), mail(SPAMMER, "Cheap pills"))
    notices = [r for r in sent(postdesk, relay) if r.message["Auto-Submitted"] == "auto-generated"]
    assert [r.rcpt_tos for r in notices] == [["sam@example.com"]]
    with postdesk.app.db.read() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.subject == "Printer broken"))
    assert notices[0].message["Subject"] == f"[#{ticket_id}] New ticket: Printer broken"
    assert f"https://desk.example.com/tickets/{ticket_id}" in notices[0].message.get_content()
    assert quiet.email not in {r.rcpt_tos[0] for r in relay.received}


def test_one_batch_of_new_tickets_in_two_departments_tells_each_agent_of_each_of_theirs(postdesk, db, relay):
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    bill = make_agent(db, "bill@example.com", departments=["Billing"])
    with postdesk.app.db.write() as session:
        for agent in (sam, bill):
            notify.choose(session, agent.agent_id, new_ticket=True, assigned=False)
    arriving = [
        ("support@example.com", mail("carla@example.org", "Printer broken")),
        ("billing@example.com", mail("dan@example.org", "Invoice wrong", to="billing@example.com")),
        ("support@example.com", mail("erin@example.org", "Screen flickers")),
    ]
    for to, raw in arriving:
        assert postdesk.send(raw, to=to)[0] == 250
    postdesk.drain()  # one batch
    notices = [r for r in sent(postdesk, relay) if r.message["Auto-Submitted"] == "auto-generated"]
    told = sorted((r.rcpt_tos[0], r.message["Subject"].split(": ", 1)[1]) for r in notices)
    assert told == [
        ("bill@example.com", "Invoice wrong"),
        ("sam@example.com", "Printer broken"),
        ("sam@example.com", "Screen flickers"),
    ]


def test_notify_assigned_emails_the_assignee_who_asked_for_it_unless_they_took_it_themselves(postdesk, db, relay):
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    quiet = make_agent(db, "quiet@example.com", departments=["Support"])
    boss = make_agent(db, "boss@example.com", role="admin")
    deliver(postdesk, mail("carla@example.org", "Printer broken"))
    links = notify.Links("http://127.0.0.1:8025/", "postdesk.test")
    with postdesk.app.db.write() as session:
        notify.choose(session, sam.agent_id, new_ticket=False, assigned=True)
        ticket_id = session.scalar(select(Ticket.id))
        assert notify.notify_assigned(session, ticket_id, sam.agent_id, links, utcnow(), by_agent_id=boss.agent_id)
        by_boss = {"by_agent_id": boss.agent_id}
        assert not notify.notify_assigned(session, ticket_id, sam.agent_id, links, utcnow(), by_agent_id=sam.agent_id)
        assert not notify.notify_assigned(session, ticket_id, quiet.agent_id, links, utcnow(), **by_boss)
    notices = [r for r in sent(postdesk, relay) if r.message["Auto-Submitted"] == "auto-generated"]
    assert [r.rcpt_tos for r in notices] == [["sam@example.com"]]
    assert notices[0].message["Subject"] == f"[#{ticket_id}] Assigned to you: Printer broken"
    with postdesk.app.db.read() as session:
        assert session.scalar(select(OutboxMail.status).where(OutboxMail.kind == "notification")) == "sent"


def test_assigning_in_the_web_view_emails_the_assignee_who_asked_for_it(postdesk, web, db, clock, relay):
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    boss = make_agent(db, "boss@example.com", role="admin")
    deliver(postdesk, mail("carla@example.org", "Printer broken"))
    with postdesk.app.db.write() as session:
        notify.choose(session, sam.agent_id, new_ticket=False, assigned=True)
        ticket_id = session.scalar(select(Ticket.id))
    client = browser(web, address="198.51.100.9")
    sign_in(client, boss, clock)
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    assert (
        client.post(f"/tickets/{ticket_id}/assign", data={"csrf": token, "agent": str(sam.agent_id)}).status_code == 303
    )
    assert client.post(f"/tickets/{ticket_id}/assign", data={"csrf": token, "agent": "me"}).status_code == 303
    notices = [r for r in sent(postdesk, relay) if r.message["Auto-Submitted"] == "auto-generated"]
    assert [(r.rcpt_tos, r.message["Subject"]) for r in notices] == [
        (["sam@example.com"], f"[#{ticket_id}] Assigned to you: Printer broken")
    ]
