"""`models.mail.parse`: real-life cases from tests/data, limits, and "never raises" properties."""

from __future__ import annotations

import hashlib
from datetime import datetime, UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import models.mail.parse as parse_module
from models.mail.message import ParsedMessage
from models.mail.parse import ParseLimits, normalise_crlf, parse, raw_sha256, strip_mbox_from

DATA = Path(__file__).resolve().parent.parent / "data"
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) + b"\r\n\n\r%%EOF\n"
FIXTURES = sorted(DATA.glob("*.eml"))


def load(name: str, **kwargs) -> ParsedMessage:
    return parse((DATA / name).read_bytes(), received_at=RECEIVED, **kwargs)


def message(headers: str, body: str = "Hello.\r\n") -> bytes:
    return (headers.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" + body).encode("utf-8", "surrogateescape")


def assert_sound(parsed: ParsedMessage, raw: bytes) -> None:
    """What every parse promises, whatever the input."""
    assert parsed.raw_sha256 == raw_sha256(raw)
    assert parsed.message_id and "<" not in parsed.message_id and ">" not in parsed.message_id
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    assert parsed.date is not None and parsed.date.utcoffset() is not None
    assert len(parsed.headers) <= 500 and all(len(v.encode()) <= 8 * 1024 for _, v in parsed.headers)
    assert len(parsed.references) <= 100
    for text in (parsed.subject, parsed.text, parsed.html, *(v for _, v in parsed.headers)):
        text.encode("utf-8")  # storable: no lone surrogates
    assert all(isinstance(p.payload, bytes) for p in parsed.attachments)


# --- raw helpers -----------------------------------------------------------------------------


def test_normalise_crlf_turns_every_line_ending_into_crlf():
    assert normalise_crlf(b"a\nb\r\nc\rd\r\r\n") == b"a\r\nb\r\nc\r\nd\r\n\r\n"


def test_raw_sha256_ignores_the_line_ending_style():
    assert (
        raw_sha256(b"A: b\n\nx\n")
        == raw_sha256(b"A: b\r\n\r\nx\r\n")
        == hashlib.sha256(b"A: b\r\n\r\nx\r\n").hexdigest()
    )


def test_strip_mbox_from_drops_only_a_leading_envelope_line():
    assert strip_mbox_from(b"From a@b  Thu Aug 22 12:36:23 2002\nSubject: x\n") == b"Subject: x\n"
    assert strip_mbox_from(b"Subject: x\nFrom here\n") == b"Subject: x\nFrom here\n"
    assert strip_mbox_from(b"From nowhere") == b""


# --- real-life cases -------------------------------------------------------------------------


def test_missing_date_takes_the_received_time():
    parsed = load("missing-date.eml")
    assert parsed.date == RECEIVED and "date-missing" in parsed.flags
    assert parsed.from_.address == "alice@example.com" and parsed.from_.name == "Alice Example"


def test_missing_message_id_is_synthesised_from_the_raw_hash():
    parsed = load("missing-message-id.eml")
    assert parsed.message_id == f"{parsed.raw_sha256}@postdesk.invalid"
    assert "message-id-missing" in parsed.flags
    assert parsed.date == datetime(2002, 9, 3, 8, 0, tzinfo=UTC)


def test_unknown_charset_is_decoded_leniently_and_noted():
    parsed = load("charset-x-unknown.eml")
    assert parsed.subject == "Café menu"
    assert parsed.text.startswith("Café au lait, crème brûlée.")
    assert "unknown-charset:x-unknown" in parsed.defects


def test_undeclared_8bit_is_read_as_windows_1252():
    parsed = load("8bit-undeclared.eml")
    assert parsed.subject == "Résumé attached"
    assert parsed.from_.name == "Danièle"
    assert "“Merci”" in parsed.text and "8bit-undeclared" in parsed.defects


def test_pdf_attachment_round_trips_byte_identical():
    parsed = load("pdf-attachment.eml")
    [pdf] = parsed.attachments
    assert (pdf.filename, pdf.content_type, pdf.payload, pdf.inline) == ("invoice.pdf", "application/pdf", PDF, False)
    assert parsed.text == "Please find the invoice attached. € 12.\n"
    assert parsed.date == datetime(2002, 9, 6, 13, 30, tzinfo=UTC)


def test_tnef_winmail_dat_is_an_attachment():
    [tnef] = load("tnef-winmail-dat.eml").attachments
    assert (tnef.filename, tnef.content_type) == ("winmail.dat", "application/ms-tnef")
    assert tnef.payload.startswith(b"\x78\x9f\x3e\x22")


def test_smime_signature_is_an_attachment_and_the_signed_text_the_body():
    parsed = load("smime-signed.eml")
    [signature] = parsed.attachments
    assert (signature.filename, signature.content_type) == ("smime.p7s", "application/pkcs7-signature")
    assert signature.payload.startswith(b"\x30\x82") and parsed.text == "Please reset my password.\n"


def test_calendar_invite_is_an_attachment_beside_text_and_html():
    parsed = load("text-calendar-invite.eml")
    [invite] = parsed.attachments
    assert invite.content_type == "text/calendar" and invite.payload.startswith(b"BEGIN:VCALENDAR\r\n")
    assert parsed.text.startswith("You are invited") and parsed.html.startswith("<p>You are invited")


def test_rfc2231_filename_is_decoded_but_not_cleaned():
    [part] = load("rfc2231-filename.eml").attachments
    assert part.filename == "€ rates für 2002.xlsx"
    assert part.payload.startswith(b"PK\x03\x04")


def test_inline_image_referenced_by_cid():
    parsed = load("inline-image-cid.eml")
    logo, unused = parsed.attachments
    assert (logo.content_id, logo.inline, logo.content_type) == ("Logo.123@example.com", True, "image/png")
    assert (unused.content_id, unused.inline) == ("unused@example.com", False)
    assert logo.payload.startswith(b"\x89PNG") and parsed.text == "" and "cid:Logo.123" in parsed.html


def test_bounce_parts_are_attachments_not_body():
    parsed = load("bounce-delivery-status.eml")
    status, original = parsed.attachments
    assert status.content_type == "message/delivery-status" and b"Status: 5.1.1" in status.payload
    assert original.content_type == "message/rfc822"
    assert original.payload.startswith(b"From: support@example.com\r\n") and b"Original text." in original.payload
    assert parsed.text == "The mail system could not deliver your message.\n"


def test_html_only_leaves_text_empty():
    parsed = parse(message("Content-Type: text/html", "<p>Hi</p>"), received_at=RECEIVED)
    assert (parsed.text, parsed.html) == ("", "<p>Hi</p>")


def test_named_inline_text_is_both_body_and_attachment():
    raw = message('Content-Type: text/html\nContent-Disposition: inline; filename="page.html"', "<p>Hi</p>")
    parsed = parse(raw, received_at=RECEIVED)
    assert parsed.html == "<p>Hi</p>" and parsed.attachments[0].filename == "page.html"


# --- header fields ---------------------------------------------------------------------------


def test_subject_is_decoded_and_on_one_line():
    raw = message("Subject: =?utf-8?q?Hello_w=C3=B6rld?=\n =?utf-8?b?IOKCrA==?= and\tmore\x0b")
    assert parse(raw, received_at=RECEIVED).subject == "Hello wörld € and more"


def test_addresses_are_lower_cased_and_bad_ones_dropped():
    raw = message(
        'From: "Big Boss" <Boss@Example.COM>\nTo: a@example.com, not an address, =?utf-8?q?Z=C3=B6e?= <ZOE@x.org>\n'
        "Cc: undisclosed-recipients:;\nReply-To: <help@example.com>"
    )
    parsed = parse(raw, received_at=RECEIVED)
    assert parsed.from_ == parse_module.Address("Big Boss", "boss@example.com")
    assert [(a.name, a.address) for a in parsed.to] == [("", "a@example.com"), ("Zöe", "zoe@x.org")]
    assert parsed.cc == [] and [a.address for a in parsed.reply_to] == ["help@example.com"]
    assert "bad-address" in parsed.defects


def test_several_from_addresses_name_the_single_sender_or_no_one():
    both = "From: Ann <ann@example.org>, bob@example.org"
    alone = parse(message(both), received_at=RECEIVED)
    assert alone.from_ is None and "multiple-from" in alone.flags
    assert [a.address for a in alone.authors] == ["ann@example.org", "bob@example.org"]
    sent = parse(message(f"{both}\nSender: Ann <ANN@example.org>"), received_at=RECEIVED)
    assert sent.from_ == parse_module.Address("Ann", "ann@example.org") and len(sent.authors) == 2
    assert parse(message(f"{both}\nSender: a@x.org, b@x.org"), received_at=RECEIVED).from_ is None
    single = parse(message("From: ann@example.org\nSender: bob@example.org"), received_at=RECEIVED)
    assert single.from_.address == "ann@example.org" and single.authors == [] and "multiple-from" not in single.flags


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?Eve=0D=0ABcc=3A_x=40y?= <eve@probe.invalid>",
        "=?utf-8?b?RXZlDQpCY2M6IHhAeQ==?= <eve@probe.invalid>",
        '"=?utf-8?q?Eve=0D=0ABcc=3A_x=40y?=" <eve@probe.invalid>',
        "eve@probe.invalid (=?utf-8?q?Eve=0D=0ABcc=3A_x=40y?=)",
    ],
)
def test_line_breaks_encoded_in_the_from_name_are_flagged_and_the_address_kept(value):
    parsed = parse(message(f"From: {value}"), received_at=RECEIVED)
    assert parsed.from_ == parse_module.Address("Eve Bcc: x@y", "eve@probe.invalid")
    assert "from-name-control-characters" in parsed.flags


def test_an_address_field_is_read_up_to_the_cap():
    to = '"Smith, J" <j@x.org>, a@x.org, (c, d) e@x.org, "g, h" <g@x.org>, i@x.org'
    parsed = parse(
        message(f"To: {to}\nCc: a@x.org, b@x.org"), received_at=RECEIVED, limits=ParseLimits(max_addresses=3)
    )
    assert [a.address for a in parsed.to] == ["j@x.org", "a@x.org", "e@x.org"] and len(parsed.cc) == 2
    assert "too-many-addresses" in parsed.flags
    assert "too-many-addresses" not in parse(message(f"To: {to}"), received_at=RECEIVED).flags


_NAMED = st.builds(
    lambda name, a: f'"{name}" <{a}>', st.text("ab ,;:<>@()'", max_size=8), st.sampled_from(["a@x.org", "b@y.org"])
)


@given(
    st.lists(
        _NAMED | st.sampled_from(["c@z.org", "(a, b) d@z.org", "Team: e@z.org, f@z.org;"]), min_size=1, max_size=8
    ),
    st.integers(1, 6),
)
def test_a_capped_address_field_reads_the_first_addresses_of_the_whole(items, cap):
    raw = message("To: " + ", ".join(items))
    whole = parse(raw, received_at=RECEIVED, limits=ParseLimits(max_addresses=100)).to
    capped = parse(raw, received_at=RECEIVED, limits=ParseLimits(max_addresses=cap)).to
    assert capped == whole[: len(capped)] and len(capped) == min(cap, len(whole))


def test_message_ids_lose_their_brackets_and_references_are_capped():
    refs = " ".join(f"<r{i}@x>" for i in range(150))
    raw = message(f"Message-ID: < abc@x >\nIn-Reply-To: Your message of Monday <r149@x>\nReferences: {refs}")
    parsed = parse(raw, received_at=RECEIVED)
    assert parsed.message_id == "abc@x" and parsed.in_reply_to == ["r149@x"]
    assert len(parsed.references) == 100 and parsed.references[0] == "r0@x" and parsed.references[-1] == "r149@x"


def test_message_id_without_an_id_is_flagged():
    parsed = parse(message("Message-ID: nonsense"), received_at=RECEIVED)
    assert "message-id-invalid" in parsed.flags and parsed.message_id.endswith("@postdesk.invalid")


@pytest.mark.parametrize(
    ("value", "expected", "flag"),
    [
        ("Tue, 03 Sep 2002 10:00:00 +0200", datetime(2002, 9, 3, 8, 0, tzinfo=UTC), None),
        ("Tue, 03 Sep 2002 10:00:00", datetime(2002, 9, 3, 10, 0, tzinfo=UTC), None),
        ("2002/09/14 Sat 02:29:32 CDT", RECEIVED, "date-invalid"),
        ("", RECEIVED, "date-missing"),
    ],
)
def test_dates_are_aware(value, expected, flag):
    parsed = parse(message(f"Date: {value}"), received_at=RECEIVED)
    assert parsed.date == expected and (flag is None or flag in parsed.flags)


def test_naive_received_time_is_taken_as_utc():
    parsed = parse(b"Subject: x\r\n\r\n", received_at=datetime(2024, 1, 1))
    assert parsed.date == datetime(2024, 1, 1, tzinfo=UTC)


def test_headers_are_listed_in_order_capped_in_size_and_number():
    many = "\n".join(f"X-N: {i}" for i in range(600))
    parsed = parse(message(f"Subject: s\nX-Long: {'a' * 20_000}\n{many}"), received_at=RECEIVED)
    assert parsed.headers[0] == ("subject", "s") and parsed.headers[1][0] == "x-long"
    assert len(parsed.headers[1][1]) == 8 * 1024 and len(parsed.headers) == 500


# --- upstream verdicts -----------------------------------------------------------------------


UPSTREAM = message("""X-Spam-Status: Yes, score=9.1
X-Spam-Flag: YES
Authentication-Results: mx.ours.example; spf=pass smtp.mailfrom=example.com
Received: from out.example.com by MX.ours.example with ESMTP id 1; Tue, 3 Sep 2002 10:00:00 +0000
Authentication-Results: mx.ours.example; dkim=pass (forged below our relay, but authserv-id is ours)
Authentication-Results: evil.example; spf=pass
X-Spam-Status: No, score=-100 (written by the sender)
Received: from sender by out.example.com; Tue, 3 Sep 2002 09:59:00 +0000""")


def test_upstream_keeps_trusted_verdicts_only():
    upstream = parse(UPSTREAM, received_at=RECEIVED, trusted_relays=["mx.ours.example"]).upstream
    assert upstream["x-spam-status"] == ["Yes, score=9.1"] and upstream["x-spam-flag"] == ["YES"]
    assert len(upstream["authentication-results"]) == 2
    assert all(v.startswith("mx.ours.example;") for v in upstream["authentication-results"])


def test_upstream_is_empty_without_trusted_relays():
    assert parse(UPSTREAM, received_at=RECEIVED).upstream == {}
    assert parse(UPSTREAM, received_at=RECEIVED, trusted_relays=["other.example"]).upstream == {}


# --- limits, generated rather than committed -------------------------------------------------


def nested(depth: int) -> bytes:
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return normalise_crlf(f"Subject: deep\n{opening}Content-Type: text/plain\n\nhello\n{closing}".encode())


def many_parts(count: int) -> bytes:
    parts = "".join(f"--p\nContent-Type: application/octet-stream\n\npart {i}\n" for i in range(count))
    return normalise_crlf(f'Subject: wide\nContent-Type: multipart/mixed; boundary="p"\n\n{parts}--p--\n'.encode())


def test_fifty_levels_of_nesting_are_not_split():
    parsed = parse(nested(50), received_at=RECEIVED)
    assert "too-deep" in parsed.flags and parsed.subject == "deep"
    assert parsed.attachments == [] and "hello" in parsed.text


def test_nesting_within_the_limit_is_split():
    parsed = parse(nested(15), received_at=RECEIVED)
    assert parsed.flags == ["message-id-missing", "date-missing"] and parsed.text == "hello"


def test_two_thousand_parts_are_not_split():
    parsed = parse(many_parts(2000), received_at=RECEIVED)
    assert "too-many-parts" in parsed.flags and parsed.attachments == [] and "part 1999" in parsed.text
    assert len(parse(many_parts(500), received_at=RECEIVED).attachments) == 500


@pytest.mark.parametrize(
    "header",
    [
        "X-Big: " + "x" * 1_048_576,
        "\n".join(f"X-Many-{i}: " + "y" * 100 for i in range(10_000)),
    ],
)
def test_a_one_megabyte_header_is_cut(header):
    raw = message(f"Subject: big\nFrom: a@example.com\n{header}", "body\r\n")
    parsed = parse(raw, received_at=RECEIVED)
    assert "header-too-large" in parsed.flags and parsed.subject == "big" and parsed.text == "body\n"
    assert parsed.from_.address == "a@example.com"


def test_fields_after_the_header_cap_are_read_once_each_within_a_bound():
    filler = "\n".join(f"X-Filler-{i}: " + "y" * 100 for i in range(30))
    late = "\n".join(
        [
            "Subject: late " + "s" * 20_000,
            "Subject: second",
            "Message-ID: <late@x>",
            "References: <a@x>\n <b@x>",
            "X-Not-Needed: z",
        ]
    )
    parsed = parse(
        message(f"Subject: early\n{filler}\n{late}", "body\r\n"),
        received_at=RECEIVED,
        limits=ParseLimits(max_header_bytes=1024),
    )
    assert "header-too-large" in parsed.flags and parsed.text == "body\n"
    assert parsed.subject == "early" and parsed.header_all("subject") == ["early"]
    assert parsed.message_id == "late@x" and parsed.references == ["a@x", "b@x"]
    assert parsed.header("x-not-needed") is None


def test_a_needed_field_after_the_cap_is_cut_to_its_bound():
    filler = "\n".join(f"X-Filler-{i}: " + "y" * 100 for i in range(30))
    parsed = parse(
        message(f"{filler}\nSubject: late " + "s" * 20_000),
        received_at=RECEIVED,
        limits=ParseLimits(max_header_bytes=1024),
    )
    assert parsed.subject.startswith("late sss") and len(parsed.subject) < 8 * 1024


def test_a_charset_mail_parser_refuses_is_read_by_the_stdlib():
    # mail-parser 4.8 raises ValueError("embedded null character") on this charset name.
    raw = b'Subject: odd\r\nContent-Type: text/plain; charset="utf\x008"\r\n\r\ncaf\xc3\xa9\r\n'
    parsed = parse(raw, received_at=RECEIVED)
    assert parsed.subject == "odd" and parsed.text == "café\n" and "parse-failed" not in parsed.flags


def test_an_attached_message_the_generator_refuses_is_still_kept():
    raw = (
        b"Subject: x\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: multipart/signed;\r\n\t\x98\r\n\r\nsigned\r\n"
    )
    [attached] = parse(raw, received_at=RECEIVED).attachments
    assert attached.content_type == "message/rfc822" and attached.payload.startswith(b"Subject: inner\r\n")


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_undeclared_8bit_in_a_filename_and_content_id(encoding):
    raw = message(
        'Content-Type: multipart/mixed; boundary="b"',
        "--b\r\nContent-Type: application/pdf\r\n"
        'Content-ID: <café@x>\r\nContent-Disposition: attachment; filename="résumé.pdf"\r\n\r\ndata\r\n--b--\r\n',
    )
    [part] = parse(raw.decode("utf-8").encode(encoding), received_at=RECEIVED).attachments
    assert (part.filename, part.content_id, part.payload) == ("résumé.pdf", "café@x", b"data")


def test_nesting_beyond_every_parser_still_gives_a_message():
    raw = nested(1200)
    parsed = parse(raw, received_at=RECEIVED, limits=ParseLimits(max_parts=10_000, max_depth=10_000))
    assert "parse-failed" in parsed.flags
    assert_sound(parsed, raw)


# --- properties ------------------------------------------------------------------------------

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # speed: bench/
TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"--",
    b"--b--",
    b"\x00",
    b"\xff\xfe",
    b":",
    b";",
    b"<",
    b">",
    b'"',
    b"=?utf-8?b?",
    b"=?x-unknown?q?=E9?=",
    b"?=",
    b"boundary=b",
    b"charset=utf-7",
    b"charset=undefined",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"filename*0*=bad'x'%ZZ",
    b"Date: ",
    b"\t",
]


@FAST
@given(st.binary(max_size=3000))
def test_parse_never_raises_on_arbitrary_bytes(raw):
    assert_sound(parse(raw, received_at=RECEIVED, trusted_relays=["mx.example"]), raw)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)).read_bytes())
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 8))
        data[at : at + cut] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
    return bytes(data)


@FAST
@given(mutated())
def test_parse_never_raises_on_mutated_real_messages(raw):
    assert_sound(parse(raw, received_at=RECEIVED, limits=ParseLimits(max_parts=5, max_depth=3)), raw)
    assert_sound(parse(raw, received_at=RECEIVED), raw)


_ATOM_TEXT = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
_HOST = st.lists(st.text("abz09-", min_size=1, max_size=6), min_size=1, max_size=3).map(".".join)
_ADDRESS = st.builds(
    lambda local, host: f"{'.'.join(local)}@{host}", st.lists(_ATOM_TEXT, min_size=1, max_size=3), _HOST
)
_HEADER_VALUE = st.one_of(
    _ADDRESS,
    st.builds(lambda name, a: f"{name} <{a}>", st.text("ab XY09.'_-", max_size=12), _ADDRESS),
    st.builds(lambda name, a: f'"{name}" <{a}>', st.text("ab XY,;:<>@()09.'_-", max_size=12), _ADDRESS),
    st.text('ab <>@".,=?(): ', max_size=30),
)


@given(_HEADER_VALUE)
def test_the_fast_path_for_simple_addresses_reads_them_as_mail_parser_does(value):
    from mailparser.utils import get_addresses

    simple = parse_module.simple_mailbox(value)
    if simple is not None:
        notes: list = []
        assert [tuple(pair) for pair in get_addresses(value, defects=notes)] == [simple]
        assert notes == []
