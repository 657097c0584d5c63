"""The tokenizer: header, body, URL and HTML tokens; never raises; deterministic; bounded."""

from __future__ import annotations


from hypothesis import given, settings, strategies as st

from classifier.tokenize import tokens
from ingest.message import Address, ParsedMessage, Part

from spam_helpers import message

texts = st.text(max_size=2000)
addresses = st.builds(Address, st.text(max_size=40), st.text(max_size=60))
parsed_messages = st.builds(
    ParsedMessage,
    raw_sha256=st.just("0" * 64),
    message_id=st.text(max_size=80),
    subject=texts,
    from_=st.none() | addresses,
    to=st.lists(addresses, max_size=5),
    reply_to=st.lists(addresses, max_size=2),
    headers=st.lists(st.tuples(st.sampled_from(["received", "content-type", "x-mailer", "list-id", "date", "x-other"]), texts), max_size=10),
    text=texts,
    html=texts,
    attachments=st.lists(st.builds(Part, st.text(max_size=30), st.text(max_size=30), st.binary(max_size=50)), max_size=3),
    defects=st.lists(st.text(max_size=20), max_size=3),
    flags=st.lists(st.text(max_size=20), max_size=3),
    upstream=st.dictionaries(st.text(max_size=20), st.lists(st.text(max_size=20), max_size=2), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(parsed_messages, st.integers(min_value=0, max_value=300))
def test_never_raises_is_deterministic_and_bounded(msg, max_tokens):
    first = tokens(msg, max_tokens)
    assert first == tokens(msg, max_tokens)
    assert len(first) <= max_tokens
    assert all(isinstance(t, str) for t in first)


def test_sender_subject_and_list_tokens():
    msg = message("hello there", subject="Weekly News", sender="news@mail.example.co.uk", name="Example News",
                  headers=[("list-id", "Weekly <weekly.example.co.uk>"), ("list-unsubscribe", "<mailto:u@example.co.uk>")])
    found = set(tokens(msg))
    assert {"from:domain:mail.example.co.uk", "from:domain:example.co.uk", "from:name:news"} <= found
    assert {"subject:weekly", "list-id:weekly.example.co.uk", "list-unsubscribe:present", "hdr:list-id"} <= found


def test_reply_to_on_another_domain_is_a_token():
    msg = message("x", reply_to=[Address("", "collect@elsewhere.example")])
    assert "reply-to:other-domain" in tokens(msg)


def test_received_hosts_and_ip_prefixes():
    received = "from helo.example.net (mx.example.net [192.0.2.7]) by us.example.org; Thu, 22 Aug 2002 08:17:21 -0400"
    found = set(tokens(message("x", headers=[("received", received)])))
    assert {"received:helo:helo.example.net", "received:host:example.net", "received:ip:192.0", "received:ip:192.0.2"} <= found


def test_words_long_words_and_urls():
    found = set(tokens(message("Cheap pills at http://www.pills.example.com/buy/now.html supercalifragilistic")))
    assert {"cheap", "pills", "url:scheme:http", "url:host:pills.example.com", "url:host:example.com", "url:path:buy"} <= found
    assert "skip:s 20" in found
    assert "at" not in found  # shorter than 3


def test_html_structure_and_text():
    html = '<html><body><font color="#ffffff">hidden words</font><img src="http://img.example.com/a.gif">' \
           '<div style="display: none">secret</div><a href="http://click.example.com/x">Click</a></body></html>'
    found = set(tokens(message(html=html)))
    assert {"html:white-font", "html:img:remote", "html:hidden-style", "html:font", "hidden", "click"} <= found
    assert "url:host:click.example.com" in found


def test_defects_flags_attachments_and_upstream():
    msg = message("", attachments=[Part("invoice.PDF.exe", "application/octet-stream", b"MZ")],
                  defects=["StartBoundaryNotFoundDefect"], flags=["date-missing"], upstream={"spf": ["fail"]})
    found = set(tokens(msg))
    assert {"defect:StartBoundaryNotFoundDefect", "flag:date-missing", "upstream:spf:fail",
            "attach:ext:exe", "attach:ct:application/octet-stream"} <= found


def _bounded(msg: ParsedMessage) -> list[str]:
    """The tokens, at most the cap (how long the worst cases take: bench/worst_cases.py)."""
    out = tokens(msg)
    assert len(out) <= 5000
    return out


def test_empty_message():
    assert "body:empty" in _bounded(ParsedMessage(raw_sha256="", message_id=""))


def test_twenty_megabyte_body_is_bounded():
    _bounded(message("word " * 4_000_000, html="<p>x</p>" * 2_500_000))


def test_hundred_thousand_distinct_tokens_are_capped():
    msg = message(" ".join(f"tok{i}" for i in range(100_000)))
    assert 1000 < len(_bounded(msg)) <= 5000  # the reading budget stops first: 2 characters a token
    assert 0 < len(tokens(msg, max_tokens=100)) <= 100


def test_binary_garbage_and_unknown_charset():
    garbage = bytes(range(256)).decode("latin-1") * 1000 + "\udcff\ud800"
    found = _bounded(message(garbage, html=garbage, subject=garbage[:300],
                             headers=[("content-type", "text/plain; charset=x-unknown-8")], defects=["unknown-charset"]))
    assert "ct:charset:x-unknown-8" in found and "defect:unknown-charset" in found


def test_only_attachments():
    msg = message("", attachments=[Part(f"f{i}.zip", "application/zip", b"PK" * 1000) for i in range(100)])
    assert "attach:ext:zip" in _bounded(msg)
