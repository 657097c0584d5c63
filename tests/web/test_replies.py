"""Answering from the web view, on mail that arrived over SMTP, delivered to a real relay: the
reply's headers and attachments, reply all, forward, the delivery shown on the ticket (failed,
retried, sent), the customer's answer threading back, and every action's permission."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from ingest.outbound import OutboxSender
from models import Contact, Message, OutboxMail
from relay import TestRelay
from tickets.signing import MessageIdSigner
from webhelp import browser, clock, csrf_of, db, make_agent, sign_in, web  # noqa: F401

CUSTOMER = "carla@example.org"


@pytest.fixture
def relay():
    relay = TestRelay()
    yield relay
    relay.stop()


def customer_mail(
    subject="Printer jammed", to="support@example.com", cc="", message_id="<q1@example.org>", in_reply_to=""
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = f"Carla Customer <{CUSTOMER}>", to, subject, message_id
    if cc:
        msg["Cc"] = cc
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content("The printer says PC LOAD LETTER.")
    return msg.as_bytes()


def arrive(postdesk, raw: bytes, to="support@example.com") -> Message:
    code, reply = postdesk.send(raw, to=to, sender=CUSTOMER)
    assert code == 250, reply
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).where(Message.spool_id == reply.split()[-1].decode())).one()


def reply(client, ticket_id: int, files=(), **fields):
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    return client.post(
        f"/tickets/{ticket_id}/reply", data={"csrf": token, **fields}, files=[("files", f) for f in files] or None
    )


def sender(postdesk, relay: TestRelay, **kw) -> OutboxSender:
    return OutboxSender(postdesk.app.db, relay.config(), **kw)


def test_a_reply_goes_from_the_mailbox_to_the_requester_with_cc_attachment_and_threading_headers(
    postdesk, web, db, clock, relay
):
    first = arrive(postdesk, customer_mail(cc="dave@example.net"))
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    agent = browser(web)
    sign_in(agent, sam, clock)
    page = agent.get(f"/tickets/{first.ticket_id}").text
    assert 'name="to" value="carla@example.org"' in page

    answer = reply(
        agent,
        first.ticket_id,
        body="Please add paper.",
        cc="boss@example.net",
        files=[("steps.pdf", b"%PDF-1.4 steps", "application/pdf")],
    )
    assert answer.status_code == 303, answer.text
    page = agent.get(f"/tickets/{first.ticket_id}").text
    assert "Please add paper." in page and "Waiting in the outbox" in page
    assert relay.received == []  # committed before it is sent: only the sender sends

    assert sender(postdesk, relay).send_due() == 1
    [got] = relay.received
    msg = got.message
    assert got.mail_from == "support@example.com" and sorted(got.rcpt_tos) == ["boss@example.net", CUSTOMER]
    assert msg["From"].addresses[0].addr_spec == "support@example.com" and "Sam" in str(msg["From"])
    assert [a.addr_spec for a in msg["To"].addresses] == [CUSTOMER]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["boss@example.net"]
    signer = MessageIdSigner(postdesk.settings.secret_key.encode(), postdesk.settings.smtp_hostname)
    assert signer.ticket_of(msg["Message-ID"].strip("<>")) == first.ticket_id
    assert msg["In-Reply-To"] == "<q1@example.org>" and msg["References"] == "<q1@example.org>"
    assert f"[#{first.ticket_id}]" in msg["Subject"] and msg["Subject"].startswith("Re: Printer jammed")
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "steps.pdf" and attachment.get_content() == b"%PDF-1.4 steps"
    assert "Sent " in agent.get(f"/tickets/{first.ticket_id}").text
    with postdesk.app.db.read() as session:
        stored = session.scalars(select(Message).where(Message.direction == "out")).one()
        assert postdesk.app.store.raw_of(session, stored.id) == got.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert session.scalar(select(Contact.answered).where(Contact.address == CUSTOMER)) is True
        assert session.scalar(select(Contact.id).where(Contact.address == "support@example.com")) is None

    answer_back = arrive(
        postdesk,
        customer_mail(subject="Re: Printer jammed", message_id="<q2@example.org>", in_reply_to=msg["Message-ID"]),
    )
    assert answer_back.ticket_id == first.ticket_id and answer_back.thread_rule == "signed"


def test_reply_all_copies_everyone_the_message_named_but_our_own_addresses(postdesk, web, db, clock, relay):
    first = arrive(postdesk, customer_mail(to="support@example.com, eve@example.net", cc="help@example.com"))
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    agent = browser(web)
    sign_in(agent, sam, clock)
    form = agent.get(f"/tickets/{first.ticket_id}/reply?message={first.id}&all=1").text
    assert 'name="cc" value="eve@example.net"' in form
    assert reply(agent, first.ticket_id, body="All of you.", reply_all="on", message=str(first.id)).status_code == 303
    sender(postdesk, relay).send_due()
    [got] = relay.received
    assert sorted(got.rcpt_tos) == [CUSTOMER, "eve@example.net"]


def test_a_bad_address_or_an_empty_reply_is_refused_with_the_reason_and_nothing_is_queued(postdesk, web, db, clock):
    first = arrive(postdesk, customer_mail())
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    agent = browser(web)
    sign_in(agent, sam, clock)
    bad = reply(agent, first.ticket_id, body="Hello", cc="not an address")
    assert bad.status_code == 400 and "is not an address" in bad.text and "Hello" in bad.text
    assert reply(agent, first.ticket_id, body="   ").status_code == 400
    assert reply(agent, first.ticket_id, body="x", to="a@b.example\r\nBcc: x@y.example").status_code == 400
    with postdesk.app.db.read() as session:
        assert session.scalars(select(OutboxMail)).all() == []


def test_a_forward_goes_to_an_outside_address_with_the_message_attached_as_it_arrived(postdesk, web, db, clock, relay):
    first = arrive(postdesk, customer_mail())
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    agent = browser(web)
    sign_in(agent, sam, clock)
    token = csrf_of(agent.get(f"/messages/{first.id}/forward").text)
    done = agent.post(
        f"/messages/{first.id}/forward", data={"csrf": token, "to": "vendor@example.net", "note": "Can you help?"}
    )
    assert done.status_code == 303
    sender(postdesk, relay).send_due()
    [got] = relay.received
    assert got.rcpt_tos == ["vendor@example.net"] and got.message["Subject"] == "Fwd: Printer jammed"
    [attached] = list(got.message.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["Message-ID"] == "<q1@example.org>"


def test_a_failed_delivery_is_shown_retried_with_backoff_and_a_refusal_can_be_tried_again(
    postdesk, web, db, clock, relay
):
    first = arrive(postdesk, customer_mail())
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    agent = browser(web)
    sign_in(agent, sam, clock)
    reply(agent, first.ticket_id, body="Try this.")
    relay.handler.answer = lambda _: "451 4.3.0 try later"
    outbox = sender(postdesk, relay, retry_seconds=60, now=clock)
    assert outbox.send_due() == 0
    page = agent.get(f"/tickets/{first.ticket_id}").text
    assert "attempt 1 failed: 451 4.3.0 try later" in page
    with postdesk.app.db.read() as session:
        row = session.scalars(select(OutboxMail)).one()
        waited = row.next_attempt_at.replace(tzinfo=clock.moment.tzinfo) - clock.moment
    assert waited.total_seconds() == 60
    assert outbox.send_due() == 0  # not due yet: the same moment

    relay.handler.answer = lambda _: "550 5.1.1 <carla@example.org>: no such user"
    later = sender(postdesk, relay, retry_seconds=60, now=lambda: clock.moment.replace(year=2027))
    later.send_due()
    page = agent.get(f"/tickets/{first.ticket_id}").text
    assert "Not delivered:" in page and "550 5.1.1 &lt;address&gt;: no such user" in page
    assert CUSTOMER not in _row(postdesk).last_error
    token = csrf_of(page)
    assert agent.post(f"/outbox/{_row(postdesk).id}/retry", data={"csrf": token}).status_code == 303
    relay.handler.answer = lambda _: "250 ok"
    assert later.send_due() == 1 and len(relay.received) == 1
    assert _row(postdesk).status == "sent"


def _row(postdesk) -> OutboxMail:
    with postdesk.app.db.read() as session:
        return session.scalars(select(OutboxMail)).one()


def test_every_answering_action_is_404_for_an_agent_of_another_department_and_needs_the_form_token(
    postdesk, web, db, clock, relay
):
    first = arrive(postdesk, customer_mail())
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    bill = make_agent(db, "bill@example.com", departments=["Billing"])
    ours, theirs = browser(web), browser(web, address="198.51.100.8")
    sign_in(ours, sam, clock)
    sign_in(theirs, bill, clock)
    reply(ours, first.ticket_id, body="Hello")
    relay.handler.answer = lambda _: "550 no"
    sender(postdesk, relay).send_due()
    outbox_id = _row(postdesk).id
    token = csrf_of(theirs.get("/account").text)
    for path in (f"/tickets/{first.ticket_id}/reply", f"/messages/{first.id}/forward"):
        assert theirs.get(path).status_code == 404, path
    for path, data in (
        (f"/tickets/{first.ticket_id}/reply", {"body": "x"}),
        (f"/messages/{first.id}/forward", {"to": "x@example.net"}),
        (f"/outbox/{outbox_id}/retry", {}),
    ):
        assert theirs.post(path, data={"csrf": token, **data}).status_code == 404, path
        assert ours.post(path, data=data).status_code == 403, path  # no form token
    assert _row(postdesk).status == "failed"
    with postdesk.app.db.read() as session:
        assert session.scalar(select(OutboxMail.id).where(OutboxMail.kind == "forward")) is None
    assert ours.get(f"/tickets/{first.ticket_id}/reply").status_code == 200
