"""Threading over SMTP: each rule, forgeries from strangers, closed tickets, automatic mail, loops."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select, update

from models import Message, Recipient, Ticket
from models.base import utcnow
from tickets.signing import MessageIdSigner

_counter = iter(range(10**6))


def mail(
    sender="alice@example.org",
    subject="Printer on fire",
    to="support@example.com",
    cc=None,
    in_reply_to=None,
    references=None,
    headers=None,
    body="Please help.",
) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg_id = f"m{next(_counter)}@example.org"
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, to, subject, f"<{msg_id}>"
    if cc:
        msg["Cc"] = cc
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n"), msg_id


def deliver(postdesk, raw, sender="alice@example.org", to="support@example.com") -> Message:
    code, _ = postdesk.send(raw, to=to, sender=sender)
    assert code == 250
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).order_by(Message.id.desc()).limit(1)).one()


def ticket(postdesk, ticket_id) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, ticket_id)


def first_ticket(postdesk, **kwargs) -> tuple[Message, str]:
    raw, msg_id = mail(**kwargs)
    return deliver(postdesk, raw), msg_id


def test_new_mail_opens_a_ticket_in_the_mailboxs_department(postdesk):
    message, _ = first_ticket(postdesk)
    t = ticket(postdesk, message.ticket_id)
    assert message.thread_rule == "new" and t.status == "new" and t.subject == "Printer on fire"
    with postdesk.app.db.read() as session:
        assert session.get(Ticket, t.id).department.name == "Support"


def test_a_reply_from_the_sender_joins_by_reference(postdesk):
    first, first_id = first_ticket(postdesk)
    raw, _ = mail(subject="Re: Printer on fire", in_reply_to=first_id, references=[first_id])
    reply = deliver(postdesk, raw)
    assert reply.ticket_id == first.ticket_id and reply.thread_rule == "reference"


def test_a_cc_participant_may_reply_by_reference(postdesk):
    first, first_id = first_ticket(postdesk, cc="bob@example.org")
    raw, _ = mail(sender="bob@example.org", in_reply_to=first_id)
    assert deliver(postdesk, raw, sender="bob@example.org").ticket_id == first.ticket_id


def test_a_stranger_forging_references_gets_a_new_linked_ticket(postdesk):
    first, first_id = first_ticket(postdesk)
    raw, _ = mail(sender="mallory@evil.example", references=[first_id], in_reply_to=first_id)
    forged = deliver(postdesk, raw, sender="mallory@evil.example")
    assert forged.ticket_id != first.ticket_id and forged.thread_rule == "new"
    assert ticket(postdesk, forged.ticket_id).linked_ticket_id == first.ticket_id


def test_a_subject_token_from_a_participant_joins(postdesk):
    first, _ = first_ticket(postdesk)
    raw, _ = mail(subject=f"Re: [#{first.ticket_id}] Printer on fire")
    joined = deliver(postdesk, raw)
    assert joined.ticket_id == first.ticket_id and joined.thread_rule == "token"


def test_a_forged_subject_token_from_a_stranger_gets_a_new_linked_ticket(postdesk):
    first, _ = first_ticket(postdesk)
    raw, _ = mail(sender="mallory@evil.example", subject=f"[#{first.ticket_id}] give me the data")
    forged = deliver(postdesk, raw, sender="mallory@evil.example")
    assert forged.ticket_id != first.ticket_id
    assert ticket(postdesk, forged.ticket_id).linked_ticket_id == first.ticket_id


def test_our_signed_message_id_threads_whoever_replies(postdesk):
    first, _ = first_ticket(postdesk)
    ours = MessageIdSigner(b"test-secret", "postdesk.localhost").make(first.ticket_id)
    raw, _ = mail(sender="colleague@example.net", in_reply_to=ours)
    reply = deliver(postdesk, raw, sender="colleague@example.net")
    assert reply.ticket_id == first.ticket_id and reply.thread_rule == "signed"


def test_a_forged_signature_is_not_ours(postdesk):
    first, _ = first_ticket(postdesk)
    forged_id = f"pd.{first.ticket_id}.00000000.{'0' * 20}@postdesk.localhost"
    raw, _ = mail(sender="mallory@evil.example", in_reply_to=forged_id)
    assert deliver(postdesk, raw, sender="mallory@evil.example").ticket_id != first.ticket_id


def test_the_subject_alone_never_threads(postdesk):
    first, _ = first_ticket(postdesk)
    raw, _ = mail(subject="Re: Printer on fire")
    assert deliver(postdesk, raw).ticket_id != first.ticket_id


def close(postdesk, ticket_id, days_ago: int) -> None:
    with postdesk.app.db.write() as session:
        when = utcnow() - timedelta(days=days_ago)
        session.execute(
            update(Ticket).where(Ticket.id == ticket_id).values(status="closed", closed_at=when, updated_at=when)
        )


def test_a_reply_to_a_closed_ticket_inside_the_window_reopens_it(postdesk):
    first, first_id = first_ticket(postdesk)
    close(postdesk, first.ticket_id, days_ago=2)
    raw, _ = mail(in_reply_to=first_id)
    assert deliver(postdesk, raw).ticket_id == first.ticket_id
    assert ticket(postdesk, first.ticket_id).status == "open"


def test_a_reply_after_the_window_opens_a_new_linked_ticket(postdesk):
    first, first_id = first_ticket(postdesk)
    close(postdesk, first.ticket_id, days_ago=31)
    raw, _ = mail(in_reply_to=first_id)
    late = deliver(postdesk, raw)
    assert late.ticket_id != first.ticket_id and "closed-ticket-expired" in late.flags
    assert ticket(postdesk, late.ticket_id).linked_ticket_id == first.ticket_id
    assert ticket(postdesk, first.ticket_id).status == "closed"


def test_an_auto_reply_is_stored_on_its_ticket_and_never_reopens_it(postdesk):
    first, first_id = first_ticket(postdesk)
    close(postdesk, first.ticket_id, days_ago=1)
    raw, _ = mail(subject="Out of office", in_reply_to=first_id, headers={"Auto-Submitted": "auto-replied"})
    auto = deliver(postdesk, raw)
    assert auto.ticket_id == first.ticket_id and "automatic" in auto.flags
    assert ticket(postdesk, first.ticket_id).status == "closed"


def bounce_of(original_id: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\nSubject: Undelivered Mail\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original_id}>\r\nSubject: x\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_finds_its_ticket_through_the_report_and_never_reopens_it(postdesk):
    first, _ = first_ticket(postdesk)
    close(postdesk, first.ticket_id, days_ago=1)
    ours = MessageIdSigner(b"test-secret", "postdesk.localhost").make(first.ticket_id)
    bounce = deliver(postdesk, bounce_of(ours), sender="")
    assert bounce.ticket_id == first.ticket_id and {"bounce", "automatic"} <= set(bounce.flags)
    assert ticket(postdesk, first.ticket_id).status == "closed"


def test_mail_from_our_own_address_or_with_our_loop_header_opens_no_ticket(postdesk):
    raw, _ = mail(sender="support@example.com")
    own = deliver(postdesk, raw, sender="support@example.com")
    assert own.ticket_id is None and "from-ourselves" in own.flags
    raw, _ = mail(headers={"X-Postdesk-Loop": "postdesk.localhost"})
    looped = deliver(postdesk, raw)
    assert looped.ticket_id is None and "loop" in looped.flags


def test_mail_to_two_mailboxes_is_one_ticket_in_the_first_listed(postdesk):
    raw, _ = mail(to="billing@example.com, support@example.com")
    code, _ = postdesk.send(raw, to=["billing@example.com", "support@example.com"])
    postdesk.drain()
    with postdesk.app.db.read() as session:
        [message] = session.scalars(select(Message)).all()
        assert session.get(Ticket, message.ticket_id).department.name == "Billing"
        envelope = session.scalars(select(Recipient.address).where(Recipient.kind == "envelope")).all()
        assert envelope == ["billing@example.com", "support@example.com"]


def test_the_same_message_id_with_other_bytes_is_kept_and_flagged(postdesk):
    raw, msg_id = mail()
    deliver(postdesk, raw)
    again = deliver(postdesk, raw.replace(b"Please help.", b"Please help!"))
    assert again.message_id_header == msg_id and "duplicate-message-id" in again.flags


def test_the_sender_becomes_a_contact_reused_later(postdesk):
    first, _ = first_ticket(postdesk, sender="Alice Liddell <alice@example.org>")
    second, _ = first_ticket(postdesk, sender="alice@example.org", subject="Another thing")
    assert first.contact_id == second.contact_id is not None


def test_a_ticket_token_beyond_any_ticket_id_points_at_nothing(postdesk):
    raw, _ = mail(subject="[#99999999999] hello")
    message = deliver(postdesk, raw)
    assert message.thread_rule == "new" and message.ticket_id is not None
