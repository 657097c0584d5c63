"""Protocol (f)'s header surgery on raw bytes: nothing lost, nothing invented, the body untouched."""

from __future__ import annotations

import sys
from datetime import datetime, UTC
from pathlib import Path

from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benches are not an installed package
from bench.channel_swap import field_name, is_channel, split_header, swapped, without_channel  # noqa: E402
from models.mail.parse import parse  # noqa: E402

RECEIVED_AT = datetime(2002, 12, 31, tzinfo=UTC)

names = st.sampled_from(
    [
        b"Received",
        b"From",
        b"To",
        b"Subject",
        b"List-Id",
        b"List-Post",
        b"Precedence",
        b"Sender",
        b"Return-Path",
        b"X-Mailer",
        b"Content-Type",
        b"Delivered-To",
        b"X-Beenthere",
        b"Date",
    ]
)
values = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b" ") or b"x")
fields = st.lists(st.tuples(names, values, st.booleans()), max_size=12).map(
    lambda fs: [name + b": " + value + (b"\n\tcontinued" if folded else b"") + b"\n" for name, value, folded in fs]
)
bodies = st.binary(max_size=300)


def _message(header: list[bytes], body: bytes) -> bytes:
    return b"".join(header) + b"\n" + body


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_split_header_loses_no_byte(raw):
    header, rest = split_header(raw)
    assert b"".join(header) + rest == raw


@settings(max_examples=200, deadline=None)
@given(fields, bodies)
def test_without_channel_keeps_the_senders_fields_in_order_and_the_body(header, body):
    header_out, rest = split_header(without_channel(_message(header, body)))
    assert header_out == [f for f in header if not is_channel(f)]
    assert rest == b"\n" + body


@settings(max_examples=200, deadline=None)
@given(fields, bodies, fields, bodies)
def test_a_swap_is_the_bodys_own_fields_under_the_donors_channel(own, body, donors, donor_body):
    header_out, rest = split_header(swapped(_message(own, body), _message(donors, donor_body)))
    assert [f for f in header_out if is_channel(f)] == [f for f in donors if is_channel(f)]
    assert [f for f in header_out if not is_channel(f)] == [f for f in own if not is_channel(f)]
    assert rest == b"\n" + body


def test_a_swapped_message_parses_to_the_same_text_and_sender():
    ham = (
        b"Received: from lists.example.org by mx.example.com\nList-Id: <users.example.org>\nPrecedence: list\n"
        b"From: Bob <bob@example.org>\nSubject: build\n\nthe build fails\n"
    )
    spam = b"Received: from 192.0.2.9 by mx.example.com\nFrom: win@prize.example\nSubject: WIN\n\nclaim your prize\n"
    under = parse(swapped(spam, ham), received_at=RECEIVED_AT)
    assert under.header("list-id") == "<users.example.org>" and under.from_.address == "win@prize.example"
    assert under.text == parse(spam, received_at=RECEIVED_AT).text
    assert [field_name(f) for f in split_header(swapped(ham, spam))[0]] == [b"Received", b"From", b"Subject"]
