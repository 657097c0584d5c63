"""The tokenizer: header, body, URL and HTML tokens; never raises; deterministic; bounded."""

from __future__ import annotations


from hypothesis import given, settings, strategies as st

from classifier.channel import CHANNEL_PREFIX, is_channel_header, without_list_footer
from classifier.tokenize import text_tokens, tokens
from models.mail.message import Address, ParsedMessage, Part

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
    headers=st.lists(
        st.tuples(st.sampled_from(["received", "content-type", "x-mailer", "list-id", "date", "x-other"]), texts),
        max_size=10,
    ),
    text=texts,
    html=texts,
    attachments=st.lists(
        st.builds(Part, st.text(max_size=30), st.text(max_size=30), st.binary(max_size=50)), max_size=3
    ),
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
    msg = message(
        "hello there",
        subject="Weekly News",
        sender="news@mail.example.co.uk",
        name="Example News",
        headers=[("list-id", "Weekly <weekly.example.co.uk>"), ("list-unsubscribe", "<mailto:u@example.co.uk>")],
    )
    found = set(tokens(msg))
    assert {"from:domain:mail.example.co.uk", "from:domain:example.co.uk", "from:name:news", "subject:weekly"} <= found
    assert {"via:list-id:weekly.example.co.uk", "via:list-unsubscribe:present", "via:hdr:list-id"} <= found
    assert not {"list-id:weekly.example.co.uk", "hdr:list-id"} & found  # the list is channel, never body


def test_reply_to_on_another_domain_is_a_token():
    msg = message("x", reply_to=[Address("", "collect@elsewhere.example")])
    assert "reply-to:other-domain" in tokens(msg)


def test_received_hosts_and_ip_prefixes_are_channel_tokens():
    received = "from helo.example.net (mx.example.net [192.0.2.7]) by us.example.org; Thu, 22 Aug 2002 08:17:21 -0400"
    found = set(tokens(message("x", headers=[("received", received)])))
    assert {
        "via:received:helo:helo.example.net",
        "via:received:host:example.net",
        "via:received:ip:192.0",
        "via:received:ip:192.0.2",
    } <= found


def test_words_long_words_and_urls():
    found = set(tokens(message("Cheap pills at http://www.pills.example.com/buy/now.html supercalifragilistic")))
    assert {
        "cheap",
        "pills",
        "url:scheme:http",
        "url:host:pills.example.com",
        "url:host:example.com",
        "url:path:buy",
    } <= found
    assert "skip:s 20" in found
    assert "at" not in found  # shorter than 3


def test_html_structure_and_text():
    html = (
        '<html><body><font color="#ffffff">hidden words</font><img src="http://img.example.com/a.gif">'
        '<div style="display: none">secret</div><a href="http://click.example.com/x">Click</a></body></html>'
    )
    found = set(tokens(message(html=html)))
    assert {"html:white-font", "html:img:remote", "html:hidden-style", "html:font", "hidden", "click"} <= found
    assert "url:host:click.example.com" in found


def test_defects_flags_attachments_and_upstream():
    msg = message(
        "",
        attachments=[Part("invoice.PDF.exe", "application/octet-stream", b"MZ")],
        defects=["StartBoundaryNotFoundDefect"],
        flags=["date-missing"],
        upstream={"spf": ["fail"]},
    )
    found = set(tokens(msg))
    assert {
        "defect:StartBoundaryNotFoundDefect",
        "flag:date-missing",
        "upstream:spf:fail",
        "attach:ext:exe",
        "attach:ct:application/octet-stream",
    } <= found


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
    found = _bounded(
        message(
            garbage,
            html=garbage,
            subject=garbage[:300],
            headers=[("content-type", "text/plain; charset=x-unknown-8")],
            defects=["unknown-charset"],
        )
    )
    assert "ct:charset:x-unknown-8" in found and "defect:unknown-charset" in found


def test_only_attachments():
    msg = message("", attachments=[Part(f"f{i}.zip", "application/zip", b"PK" * 1000) for i in range(100)])
    assert "attach:ext:zip" in _bounded(msg)


header_names = st.sampled_from(
    [
        "received",
        "list-id",
        "list-post",
        "precedence",
        "sender",
        "delivered-to",
        "return-path",
        "x-beenthere",
        "x-mailer",
        "content-type",
        "date",
        "x-other",
    ]
)
headers = st.lists(st.tuples(header_names, st.text(max_size=200)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(parsed_messages, headers)
def test_the_channel_changes_only_channel_tokens(msg, other_channel):
    """Protocol (f)'s premise: a body reads the same under any list and relay headers."""
    own = [(k, v) for k, v in msg.headers if not is_channel_header(k)]
    theirs = [(k, v) for k, v in other_channel if is_channel_header(k)]
    before = tokens(ParsedMessage(**{**msg.__dict__, "headers": own}))
    after = tokens(ParsedMessage(**{**msg.__dict__, "headers": theirs + own}))
    assert [t for t in before if not t.startswith(CHANNEL_PREFIX)] == [
        t for t in after if not t.startswith(CHANNEL_PREFIX)
    ]
    assert all(t.startswith(CHANNEL_PREFIX) for t in set(after) - set(before))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=1000).filter(lambda t: without_list_footer(t) == t))
def test_a_list_footer_adds_no_tokens(text):
    footer = (
        "\n_______________________________________________\nExample-users mailing list\nExample-users@example.org\n"
        "http://lists.example.org/mailman/listinfo/example-users\n"
    )
    assert list(text_tokens(without_list_footer(text + footer))) == list(text_tokens(text))


def test_list_footers_are_cut_and_a_signature_is_kept():
    signature = "thanks\n-- \nAlice Example\nhttp://alice.example.org/\n"
    assert without_list_footer(signature) == signature
    ilug = (
        "the patch works\n-- \nIrish Linux Users' Group: ilug@linux.ie\n"
        "http://www.linux.ie/mailman/listinfo/ilug for (un)subscription information.\n"
    )
    assert without_list_footer(ilug) == "the patch works\n"
    sponsored = (
        "see you\n-------------------------------------------------------\n"
        "This sf.net email is sponsored by: a geek shop\n"
    )
    assert without_list_footer(sponsored) == "see you\n"


def test_dates_read_as_what_they_are_and_words_stay_words():
    found = list(text_tokens("On Thu, 22 Aug 2002 Bob wrote: may we meet in september?"))
    assert {"~weekday,", "~month", "~year", "may", "september?"} <= set(found)
    assert not {"thu,", "aug", "2002"} & set(found)


def test_text_without_spaces_is_read_as_character_pairs():
    found = list(text_tokens("一网惠天下一展天下知道了吗 hello привет"))
    assert found[:4] == ["pair:一网", "pair:惠天", "pair:下一", "pair:展天"] and {"hello", "привет"} <= set(found)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=3000))
def test_text_tokens_are_bounded_and_never_empty(text):
    found = list(text_tokens(text))
    assert all(found) and len(found) <= len(text.split()) * 40
