"""Hostile or odd mail sent over SMTP: who is credited, what is recorded, what is capped, where it waits."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from models import Contact, Message, Recipient, Ticket, TicketParticipant

_ids = itertools.count()


def mail(*headers: str, body: str = "Please help.") -> bytes:
    fields = list(headers)
    if not any(h.lower().startswith("message-id:") for h in fields):
        fields.append(f"Message-ID: <hostile-{next(_ids)}@example.org>")
    if not any(h.lower().startswith("to:") for h in fields):
        fields.append("To: support@example.com")
    return ("\r\n".join(fields) + "\r\n\r\n" + body + "\r\n").encode()


def deliver(postdesk, raw: bytes, sender: str = "someone@example.org") -> Message:
    code, reply = postdesk.send(raw, sender=sender)
    assert code == 250, reply
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).where(Message.spool_id == reply.split()[-1].decode())).one()


def recipients(postdesk, message: Message, kind: str) -> list[str]:
    with postdesk.app.db.read() as session:
        return list(
            session.scalars(
                select(Recipient.address)
                .where(Recipient.message_id == message.id, Recipient.kind == kind)
                .order_by(Recipient.id)
            )
        )


def contacts(postdesk) -> list[str]:
    with postdesk.app.db.read() as session:
        return sorted(session.scalars(select(Contact.address)))


def ticket_of(postdesk, message: Message) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, message.ticket_id)


def participants(postdesk, message: Message) -> set[str]:
    with postdesk.app.db.read() as session:
        return set(
            session.scalars(select(TicketParticipant.address).where(TicketParticipant.ticket_id == message.ticket_id))
        )


# --- 9: several From addresses ---------------------------------------------------------------


def test_several_from_addresses_credit_no_one_and_are_all_recorded_and_flagged(postdesk):
    message = deliver(postdesk, mail("From: manager@helpdesk.example, attacker@evil.example", "Subject: Pay this"))
    assert "multiple-from" in message.flags
    assert message.from_address == "" and message.contact_id is None
    assert recipients(postdesk, message, "from") == ["manager@helpdesk.example", "attacker@evil.example"]
    assert contacts(postdesk) == [] and ticket_of(postdesk, message).contact_id is None
    assert not {"manager@helpdesk.example", "attacker@evil.example"} & participants(postdesk, message)


def test_several_from_addresses_with_one_sender_credit_the_sender(postdesk):
    message = deliver(
        postdesk,
        mail(
            "From: Ann <ann@example.org>, Bob <bob@example.org>",
            "Sender: Ann <ann@example.org>",
            "Subject: From both of us",
        ),
    )
    assert "multiple-from" in message.flags
    assert (message.from_address, message.from_name) == ("ann@example.org", "Ann")
    assert contacts(postdesk) == ["ann@example.org"] and ticket_of(postdesk, message).contact_id == message.contact_id
    assert recipients(postdesk, message, "from") == ["ann@example.org", "bob@example.org"]


def test_several_from_addresses_with_several_senders_credit_no_one(postdesk):
    message = deliver(
        postdesk, mail("From: ann@example.org, bob@example.org", "Sender: ann@example.org, bob@example.org")
    )
    assert message.from_address == "" and contacts(postdesk) == []


def test_a_single_from_address_is_credited_as_before_and_not_repeated(postdesk):
    message = deliver(postdesk, mail("From: Ann <ann@example.org>", "Sender: bob@example.org"))
    assert message.from_address == "ann@example.org" and "multiple-from" not in message.flags
    assert recipients(postdesk, message, "from") == [] and contacts(postdesk) == ["ann@example.org"]


# --- 10: a To with thousands of addresses ----------------------------------------------------


def test_sixteen_thousand_to_addresses_are_capped_flagged_and_kept_in_the_raw_mail(postdesk):
    to = ",\r\n ".join(f"user{i}@example.org" for i in range(16_000))
    raw = mail("From: ann@example.org", f"To: support@example.com, {to}", "Subject: Everyone")
    message = deliver(postdesk, raw)
    assert "too-many-addresses" in message.flags
    kept = recipients(postdesk, message, "to")
    assert len(kept) == postdesk.settings.max_header_addresses
    assert kept[:2] == ["support@example.com", "user0@example.org"]
    assert len(participants(postdesk, message)) <= postdesk.settings.max_header_addresses + 1
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Recipient)) <= postdesk.settings.max_header_addresses + 1
    with postdesk.app.db.read() as session:
        assert b"user15999@example.org" in postdesk.app.store.raw_of(session, message.id)


def test_addresses_within_the_cap_are_all_kept(postdesk):
    cc = ", ".join(f"User {i} <user{i}@example.org>" for i in range(postdesk.settings.max_header_addresses))
    message = deliver(postdesk, mail("From: ann@example.org", f"Cc: {cc}"))
    assert "too-many-addresses" not in message.flags
    assert len(recipients(postdesk, message, "cc")) == postdesk.settings.max_header_addresses


# --- 11: a header block over the cap ---------------------------------------------------------


def test_fields_after_the_header_cap_are_still_read(postdesk):
    filler = "\r\n".join(f"X-Filler-{i}: " + "y" * 100 for i in range(3_000))  # ~330 kB, over 256 kB
    raw = mail(
        "Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000",
        filler,
        "From: Ann <ann@example.org>",
        "Subject: Late subject",
        "Date: Tue, 03 Sep 2002 10:00:00 +0000",
        "Message-ID: <late@example.org>",
        "In-Reply-To: <earlier@example.org>",
    )
    message = deliver(postdesk, raw)
    assert "header-too-large" in message.flags
    assert message.subject == "Late subject" and message.message_id_header == "late@example.org"
    assert message.date.year == 2002 and message.in_reply_to == ["earlier@example.org"]
    assert message.from_address == "ann@example.org"
    assert recipients(postdesk, message, "to") == ["support@example.com"]


# --- 12: control characters encoded in the display name --------------------------------------


def test_an_encoded_crlf_in_the_from_name_keeps_the_requester_and_is_flagged(postdesk):
    message = deliver(postdesk, mail("From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40y?= <eve@probe.invalid>", "Subject: hi"))
    assert message.from_address == "eve@probe.invalid" and message.contact_id is not None
    assert message.from_name == "Eve Bcc: x@y"
    assert "from-name-control-characters" in message.flags
    assert contacts(postdesk) == ["eve@probe.invalid"]


# --- 14: automatic mail that belongs to no ticket --------------------------------------------


def bounce(original_id: str) -> bytes:
    return mail(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>",
        "Subject: Undelivered Mail Returned to Sender",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        body="--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original_id}>\r\nSubject: x\r\n\r\n--B--",
    )


def test_a_bounce_that_matches_no_ticket_waits_in_the_automatic_queue_without_a_contact(postdesk):
    message = deliver(postdesk, bounce("never-sent-by-us@example.org"), sender="")
    assert {"bounce", "automatic"} <= set(message.flags)
    queued = ticket_of(postdesk, message)
    assert queued.queue == "automatic" and queued.contact_id is None and message.contact_id is None
    assert message.from_address == "mailer-daemon@mx.example.org"
    assert contacts(postdesk) == []


def test_an_auto_reply_that_matches_no_ticket_waits_in_the_automatic_queue(postdesk):
    message = deliver(postdesk, mail("From: bob@example.org", "Subject: Out of office", "Auto-Submitted: auto-replied"))
    assert ticket_of(postdesk, message).queue == "automatic" and contacts(postdesk) == []


def test_a_person_writing_after_an_automatic_message_opens_an_inbox_ticket_and_becomes_a_contact(postdesk):
    deliver(postdesk, mail("From: bob@example.org", "Subject: Out of office", "Auto-Submitted: auto-replied"))
    message = deliver(postdesk, mail("From: bob@example.org", "Subject: Back now, about my order"))
    assert ticket_of(postdesk, message).queue == "inbox" and contacts(postdesk) == ["bob@example.org"]
