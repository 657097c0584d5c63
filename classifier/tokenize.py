"""ParsedMessage → tokens: the header clues, words, URL pieces and HTML structure the model counts.

Each token is a short string with a prefix saying where it came from ("from:domain:example.com",
"url:host:example.com", "html:img:remote", plain body words have no prefix). Bad input is
evidence: defects, parse flags and decode problems become tokens, never exceptions.
Work is bounded: at most `max_tokens` tokens, and each text is cut to a few characters per token
allowed before it is scanned, so a 20 MB body costs no more than a normal one.

What the sender wrote is read here; what the channel added (relays, lists, the recipient domain,
the host that made the Message-ID, a list's footer) is read by `classifier.channel` and carries the
"via:" prefix, so that the model can keep its weight bounded. Choices, as in SpamBayes' and
SpamAssassin's Bayes tokenizers: words of 3..12 characters split on whitespace, longer ones as
"skip:<c> <len//10*10>"; long runs of a script written without spaces as character pairs; header
names of the sender's headers only; month, weekday and year names as what they are ("~month").
The figures behind each choice: bench/results/spam_accuracy.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain, islice

from classifier.channel import channel_tokens, is_channel_header, without_list_footer
from classifier.html_text import html_tokens
from classifier.token_pieces import domain_tokens, log_bucket, shape
from models.mail.message import Address, ParsedMessage

CHARS_PER_TOKEN = 2  # text scanned per token allowed: 5,000 tokens read at most 10 kB of a body
HTML_SHARE = 1  # HTML gets the same budget as text: lexbor parses that much cheaply (bench/results/spam_speed.md)
_MAX_HEADER_VALUE = 512
_MAX_PAIRS = 40  # character pairs taken from one long non-ASCII word


def _calendar_words() -> dict[str, str]:
    """Month and weekday names and the years 1980-2049, with the punctuation that follows them in
    dates, mapped to what they are: "aug," → "~month,". Quoted dates ("On Thu, 22 Aug 2002 …
    wrote:") mark replies, but the names themselves say when the training mail was written, and
    later mail names other months (see the notebook). "may", "mar", "sat", "sun" and "wed" are
    words too and stay as they are."""
    months = "jan feb apr jun jul aug sep sept oct nov dec january february march april june july august"
    months += " september october november december"
    days = "mon tue thu fri monday tuesday wednesday thursday friday saturday sunday"
    names = {
        **dict.fromkeys(months.split(), "~month"),
        **dict.fromkeys(days.split(), "~weekday"),
        **dict.fromkeys(map(str, range(1980, 2050)), "~year"),
    }
    return {name + tail: shape + tail for name, shape in names.items() for tail in ("", ",", ".", ":", ";", ")")}


_CALENDAR = _calendar_words()

_URL_IN_WORD = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)[^<>\"'()\[\]{}]+")
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_SPLIT_NAME = re.compile(r"[\w'-]+")
_PATH_PIECE = re.compile(r"[^/?&=.#%+_-]{2,}")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{2,}")


def tokens(msg: ParsedMessage, max_tokens: int = 5000) -> list[str]:
    """The message's tokens in a stable order, at most `max_tokens` of them; the channel's come last,
    so they never take the place of the sender's when the cap binds."""
    budget = max(max_tokens, 0) * CHARS_PER_TOKEN
    stream = chain(header_tokens(msg), body_tokens(msg, budget), channel_tokens(msg))
    return list(islice(stream, max_tokens))


def header_tokens(msg: ParsedMessage) -> Iterator[str]:
    """Tokens from the headers the sender wrote, each prefixed with where it came from."""
    yield from _sender_tokens(msg)
    yield from _recipient_tokens(msg)
    yield from words(msg.subject[:_MAX_HEADER_VALUE], "subject:")
    yield from _content_type_tokens(msg)
    yield from _agent_tokens(msg)
    yield from _header_name_tokens(msg)
    yield from _message_id_tokens(msg)
    yield from _state_tokens(msg)


def body_tokens(msg: ParsedMessage, budget: int) -> Iterator[str]:
    """Words and URL pieces from the text part, then HTML text and structure, then attachments."""
    yield from text_tokens(without_list_footer(msg.text)[:budget])
    if msg.html:
        yield from html_tokens(msg.html[: budget // HTML_SHARE], text_tokens)
    yield from _attachment_tokens(msg)


def text_tokens(text: str) -> Iterator[str]:
    """Lower-cased distinct words of 3..12 characters, long ones as a skip token, URLs as pieces.

    Split on whitespace, much faster than a word regex (bench/results/spam_speed.md); distinct words
    only, as presence is all the model counts.
    """
    for word in dict.fromkeys(text.lower().split()):
        if "://" in word or word.startswith("www."):
            yield from _embedded_url_tokens(word)
        elif 2 < len(word) < 13:
            yield _CALENDAR.get(word, word)
        elif len(word) > 12:
            yield from _long_word_tokens(word)


def _embedded_url_tokens(word: str) -> Iterator[str]:
    for url in _URL_IN_WORD.findall(word)[:3]:
        yield from url_tokens(url.rstrip(".,;:!?"))


def words(text: str, prefix: str) -> Iterator[str]:
    """Prefixed lower-cased words of a short header value (subject, display name)."""
    for word in text.lower().split():
        yield prefix + word if len(word) <= 12 else prefix + _long_word_token(word)


def url_tokens(url: str) -> Iterator[str]:
    """Scheme, every domain suffix of the host, and the pieces of the path."""
    scheme, _, rest = url.partition("://") if "://" in url else ("http", "", url)
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2].partition(":")[0]
    yield "url:scheme:" + scheme
    if _IPV4.fullmatch(host):
        yield "url:ip-host"
    yield from domain_tokens("url:host:", host)
    for piece in _PATH_PIECE.findall(path[:200])[:10]:
        yield "url:path:" + piece[:20]


def _long_word_tokens(word: str) -> Iterator[str]:
    """A long word that is mostly non-ASCII is most likely text in a script written without spaces
    (Chinese, Japanese), where a whitespace-split "word" is a sentence: the character pairs of its
    non-ASCII runs, as SpamAssassin's Bayes tokenizer splits long 8-bit runs. Any other long word
    is one skip token."""
    if word.isascii() or sum(not c.isascii() for c in word) * 2 < len(word):
        yield _long_word_token(word)
        return
    pairs = (run[i : i + 2] for run in _NON_ASCII_RUN.findall(word) for i in range(0, len(run) - 1, 2))
    yield from ("pair:" + pair for pair in islice(pairs, _MAX_PAIRS))


def _long_word_token(word: str) -> str:
    if "@" in word:
        return "email:" + word.rpartition("@")[2][:40]
    return f"skip:{word[0]} {len(word) // 10 * 10}"


def _address_tokens(prefix: str, addr: Address) -> Iterator[str]:
    local, _, domain = addr.address.rpartition("@")
    yield f"{prefix}:addr:{addr.address[:80]}"
    yield from domain_tokens(prefix + ":domain:", domain[:80])
    if not local:
        yield prefix + ":no-local-part"
    if addr.name:
        yield from (f"{prefix}:name:{w}" for w in _SPLIT_NAME.findall(addr.name.lower()[:80]))
    else:
        yield prefix + ":no-name"


def _sender_tokens(msg: ParsedMessage) -> Iterator[str]:
    if msg.from_ is None:
        yield "from:none"
        return
    yield from _address_tokens("from", msg.from_)
    for reply_to in msg.reply_to[:2]:
        yield from _address_tokens("reply-to", reply_to)
        if reply_to.address.rpartition("@")[2] != msg.from_.address.rpartition("@")[2]:
            yield "reply-to:other-domain"


def _recipient_tokens(msg: ParsedMessage) -> Iterator[str]:
    yield f"to:count:{log_bucket(len(msg.to))}"
    yield f"cc:count:{log_bucket(len(msg.cc))}"
    if msg.from_ is not None and any(addr.address == msg.from_.address for addr in msg.to + msg.cc):
        yield "to:is-from"


def _content_type_tokens(msg: ParsedMessage) -> Iterator[str]:
    value = (msg.header("content-type") or "text/plain").lower()[:_MAX_HEADER_VALUE]
    ctype, _, params = value.partition(";")
    yield "ct:" + ctype.strip()
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip() in ("charset", "boundary"):
            yield f"ct:{key.strip()}:" + (val.strip().strip('"')[:30] if key.strip() == "charset" else shape(val))
    cte = msg.header("content-transfer-encoding")
    if cte:
        yield "cte:" + cte.strip().lower()[:30]


def _agent_tokens(msg: ParsedMessage) -> Iterator[str]:
    for name in ("x-mailer", "user-agent"):
        value = msg.header(name)
        if value:
            yield f"{name}:" + value.lower()[:40]
            yield from words(value[:_MAX_HEADER_VALUE], f"{name}:word:")


def _header_name_tokens(msg: ParsedMessage) -> Iterator[str]:
    own = [name for name, _ in msg.headers[:200] if not is_channel_header(name)]
    yield from ("hdr:" + name[:40] for name in dict.fromkeys(own))
    yield f"hdr:count:{log_bucket(len(own))}"


def _message_id_tokens(msg: ParsedMessage) -> Iterator[str]:
    local, at, _ = msg.message_id.rpartition("@")
    yield "message-id:local:" + shape(local) if at else "message-id:no-domain"
    date = msg.header("date")
    if date:
        yield "date:zone:" + date.strip().rpartition(" ")[2][:12]


def _state_tokens(msg: ParsedMessage) -> Iterator[str]:
    yield from ("defect:" + d[:60] for d in msg.defects[:50])
    yield from ("flag:" + f[:60] for f in msg.flags[:50])
    for key, values in list(msg.upstream.items())[:20]:
        yield from (f"upstream:{key.lower()[:40]}:{v.lower()[:60]}" for v in values[:10])


def _attachment_tokens(msg: ParsedMessage) -> Iterator[str]:
    yield f"attach:count:{log_bucket(len(msg.attachments))}"
    for part in msg.attachments[:50]:
        yield "attach:ct:" + part.content_type[:60]
        ext = part.filename.rpartition(".")[2].lower() if "." in part.filename else ""
        yield "attach:ext:" + ext[:10]
        yield f"attach:size:{log_bucket(len(part.payload) // 1024)}k"
    if not msg.text and not msg.html:
        yield "body:empty"
