"""Whatever the edge accepted stores, on SQLite and on PostgreSQL alike (no NUL, no lone surrogate
reaches a text column), through the real spool, runner and pipeline."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select

from models import Attachment, Message, Recipient
from models.mail.envelope import Envelope


def deliver(desk, raw: bytes, mail_from: str = "customer@example.org") -> Message:
    app, runner = desk
    entry_id = app.spool.put(raw, Envelope(mail_from=mail_from, rcpt_tos=["support@example.com"]))
    runner.drain()
    assert [e.envelope.errors for e in app.spool.bad() if e.id == entry_id] == []
    with app.db.read() as session:
        return session.scalars(select(Message).where(Message.spool_id == entry_id)).one()


def test_a_sender_with_a_nul_spooled_before_the_edge_refused_it_is_stored_cleaned(desk):
    message = deliver(desk, b"Subject: old entry\r\n\r\nhello\r\n", mail_from="a\x00b@example.org")
    assert message.envelope_from == "a\ufffdb@example.org"


NAMES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Sender",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "List-Id",
    "Content-Type",
    "Content-Disposition",
    "Content-ID",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "X-Spam-Status",
    "Authentication-Results",
    "Received",
    "X-Odd\x00Name",
]
HOSTILE = st.binary(max_size=40) | st.sampled_from(
    [
        b"\x00",
        b"\xff\xfe",
        b"\xed\xa0\x80",
        b"=?utf-8?b?AA==?=",
        b"=?x\x00?q?a=00b?=",
        b"=?utf-8?q?=0D=0A?=",
        b'"\x00" <a\x00b@example.org>',
        b"a@\x00",
        b'name="\x00.pdf"',
        b"text/\x00plain",
        b"<\x00@x>",
        b"multipart/mixed; boundary=\x00",
        b"=?utf-16?b?2DzcAA==?=",
        b'; charset="\x00"',
        b"=?utf-8?b?7aCA?=",
        b"; filename*=utf-8''%00%ed%a0%80.txt",
        b"; name*0*=x-unknown''%ff; name*1=\x00",
    ]
)


_examples = itertools.count()  # each example's bytes differ: the same bytes twice are one message


@st.composite
def hostile_message(draw) -> bytes:
    """A message whose header fields (top level and in one attached part) carry random bytes."""
    fields = draw(
        st.lists(st.tuples(st.sampled_from(NAMES), st.lists(HOSTILE, min_size=1, max_size=3)), min_size=1, max_size=8)
    )
    head = b"".join(
        name.encode() + b": " + b"".join(parts).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
        for name, parts in fields
    )
    part = draw(st.lists(HOSTILE, min_size=1, max_size=3).map(b"".join)).replace(b"\r", b"").replace(b"\n", b"")
    return (
        b"X-Example: %d\r\nFrom: a@example.org\r\nMIME-Version: 1.0\r\n" % next(_examples)
        + head
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\x00\r\n'
        b"--b\r\nContent-Type: "
        + part
        + b"\r\nContent-Disposition: attachment; filename="
        + part
        + b"\r\nContent-ID: "
        + part
        + b"\r\n\r\n"
        + draw(st.binary(max_size=40))
        + b"\r\n--b--\r\n"
    )


@hsettings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=hostile_message())
def test_random_bytes_in_header_fields_always_store(desk, raw):
    message = deliver(desk, raw)
    app, _ = desk
    with app.db.read() as session:  # every row of it reads back
        session.scalars(select(Recipient).where(Recipient.message_id == message.id)).all()
        session.scalars(select(Attachment).where(Attachment.message_id == message.id)).all()
