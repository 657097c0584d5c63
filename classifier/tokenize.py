"""ParsedMessage → tokens: the header clues, words, URL pieces and HTML structure the model counts.

Each token is a short string with a prefix saying where it came from ("from:domain:example.com",
"url:host:example.com", "html:img:remote", plain body words have no prefix). Bad input is
evidence: defects, parse flags and decode problems become tokens, never exceptions.
Work is bounded: at most `max_tokens` tokens, and each text is cut to a few characters per token
allowed before it is scanned, so a 20 MB body costs no more than a normal one.

Lab notebook: 1-ROCA %, 5-fold CV inside the earliest 70 % by time (the training part of the time
split), the then model defaults (s 0.01, min_dist 0.25, every clue) / SpamBayes-like (min_dist 0.1, 150 clues):
- all tokens 0.0013 / 0.019; body tokens only 0.060 / 0.305: header tokens are the big win.
- without From/Reply-To/List-* tokens 0.0018 / 0.049 — they tell newsletters from spam; kept.
- without Received tokens 0.0105 / 0.075; without HTML structure 0.0031 / 0.021; without header
  names ("hdr:x-mailer") 0.0013 / 0.022: all kept.
- words 3..12 characters, longer ones as "skip:<c> <len//10*10>", as SpamBayes; no word pairs and
  presence only, never counts (not re-measured here: the brief's prior results on this corpus).
- reading budget: 16 chars/token for text and HTML → 8 for text, 2 for HTML: 0.0013 → 0.0010 and
  score p99 2.38 → 1.97 ms (bench/spam_speed.py): the start of a message says enough.
- HTML by lexbor instead of html.parser, and 2 chars/token for text and HTML (10 kB each): score
  CPU p99 1.3-1.8 → 1.1-1.7 ms (same process, alternating); bench/spam_accuracy.py 1-ROCA
  (a) 0.003 → 0.001, (b) 0.003 → 0.007, (c) 0.053 → 0.041 (the (b) change is ham/00166, see there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain, islice

from classifier.html_text import html_tokens, log_bucket
from ingest.message import Address, ParsedMessage

CHARS_PER_TOKEN = 2  # text scanned per token allowed: 5,000 tokens read at most 10 kB of a body
HTML_SHARE = 1  # HTML gets the same budget as text: lexbor reads 10 kB in ~0.1 ms
_MAX_RECEIVED = 8
_MAX_RECIPIENTS = 20
_MAX_HEADER_VALUE = 512

_URL_IN_WORD = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)[^<>\"'()\[\]{}]+")
_HOST = re.compile(r"\b(?:[a-z0-9][a-z0-9-]*\.)+[a-z][a-z0-9-]*\b", re.I)  # a letter in the last label
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_HELO = re.compile(r"^\s*from\s+(\S+)", re.I)
_SPLIT_NAME = re.compile(r"[\w'-]+")
_PATH_PIECE = re.compile(r"[^/?&=.#%+_-]{2,}")


def tokens(msg: ParsedMessage, max_tokens: int = 5000) -> list[str]:
    """The message's tokens in a stable order, at most `max_tokens` of them."""
    budget = max(max_tokens, 0) * CHARS_PER_TOKEN
    stream = chain(header_tokens(msg), body_tokens(msg, budget))
    return list(islice(stream, max_tokens))


def header_tokens(msg: ParsedMessage) -> Iterator[str]:
    """Tokens from the envelope-like headers, each prefixed with where it came from."""
    yield from _sender_tokens(msg)
    yield from _recipient_tokens(msg)
    yield from words(msg.subject[:_MAX_HEADER_VALUE], "subject:")
    yield from _received_tokens(msg.header_all("received")[:_MAX_RECEIVED])
    yield from _content_type_tokens(msg)
    yield from _agent_tokens(msg)
    yield from _list_tokens(msg)
    yield from _header_name_tokens(msg)
    yield from _message_id_tokens(msg)
    yield from _state_tokens(msg)


def body_tokens(msg: ParsedMessage, budget: int) -> Iterator[str]:
    """Words and URL pieces from the text part, then HTML text and structure, then attachments."""
    yield from text_tokens(msg.text[:budget])
    if msg.html:
        yield from html_tokens(msg.html[: budget // HTML_SHARE], text_tokens)
    yield from _attachment_tokens(msg)


def text_tokens(text: str) -> Iterator[str]:
    """Lower-cased distinct words of 3..12 characters, long ones as a skip token, URLs as pieces.

    Splitting on whitespace is 5x faster than a word regex; distinct words only, as presence is all
    the model counts.
    """
    for word in dict.fromkeys(text.lower().split()):
        if "://" in word or word.startswith("www."):
            yield from _embedded_url_tokens(word)
        elif 2 < len(word) < 13:
            yield word
        elif len(word) > 12:
            yield _long_word_token(word)


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


def domain_tokens(prefix: str, host: str) -> Iterator[str]:
    """The host and each of its parent domains: a.b.example.com, b.example.com, example.com, com."""
    parts = host.strip(".").lower().split(".")[-6:]
    for i in range(len(parts)):
        yield prefix + ".".join(parts[i:])


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
    for addr in (msg.to + msg.cc)[:_MAX_RECIPIENTS]:
        yield from domain_tokens("to:domain:", addr.address.rpartition("@")[2][:80])
        if msg.from_ is not None and addr.address == msg.from_.address:
            yield "to:is-from"


def _received_tokens(received: list[str]) -> Iterator[str]:
    """HELO names, and each relay host and IP once: the same hops recur down the chain, and a
    token repeated only costs time (the features are distinct anyway)."""
    yield f"received:count:{log_bucket(len(received))}"
    hosts: dict[str, None] = {}
    ips: dict[tuple[str, ...], None] = {}
    for value in received:
        value = value[:_MAX_HEADER_VALUE].lower()
        helo = _HELO.match(value)
        if helo:
            yield "received:helo:" + helo.group(1)[:60]
        hops = value.partition(";")[0]
        hosts.update(dict.fromkeys(_HOST.findall(hops)[:6]))
        ips.update(dict.fromkeys(_IPV4.findall(hops)[:4]))
    for host in hosts:
        yield from domain_tokens("received:host:", host)
    for a, b, c, d in ips:
        yield from (f"received:ip:{a}.{b}", f"received:ip:{a}.{b}.{c}", f"received:ip:{a}.{b}.{c}.{d}")


def _content_type_tokens(msg: ParsedMessage) -> Iterator[str]:
    value = (msg.header("content-type") or "text/plain").lower()[:_MAX_HEADER_VALUE]
    ctype, _, params = value.partition(";")
    yield "ct:" + ctype.strip()
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip() in ("charset", "boundary"):
            yield f"ct:{key.strip()}:" + (val.strip().strip('"')[:30] if key.strip() == "charset" else _shape(val))
    cte = msg.header("content-transfer-encoding")
    if cte:
        yield "cte:" + cte.strip().lower()[:30]


def _shape(value: str) -> str:
    """A coarse shape of a generated string: letters → a, digits → 9, runs collapsed."""
    shape = re.sub(r"[a-z]+", "a", re.sub(r"\d+", "9", value.strip().strip('"').lower()[:60]))
    return shape[:20]


def _agent_tokens(msg: ParsedMessage) -> Iterator[str]:
    for name in ("x-mailer", "user-agent"):
        value = msg.header(name)
        if value:
            yield f"{name}:" + value.lower()[:40]
            yield from words(value[:_MAX_HEADER_VALUE], f"{name}:word:")


def _list_tokens(msg: ParsedMessage) -> Iterator[str]:
    list_id = msg.header("list-id")
    if list_id:
        yield "list-id:" + list_id.lower().rpartition("<")[2].strip(" >")[:80]
    for name in ("list-unsubscribe", "list-post", "precedence"):
        value = msg.header(name)
        if value:
            yield from (f"{name}:{host}" for host in _HOST.findall(value.lower()[:_MAX_HEADER_VALUE])[:3])
            yield f"{name}:" + (value.lower()[:20] if name == "precedence" else "present")


def _header_name_tokens(msg: ParsedMessage) -> Iterator[str]:
    names = dict.fromkeys(name for name, _ in msg.headers[:200])
    yield from ("hdr:" + name[:40] for name in names)
    yield f"hdr:count:{log_bucket(len(msg.headers))}"


def _message_id_tokens(msg: ParsedMessage) -> Iterator[str]:
    local, at, domain = msg.message_id.rpartition("@")
    yield "message-id:domain:" + domain.lower()[:60] if at else "message-id:no-domain"
    if at:
        yield "message-id:local:" + _shape(local)
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
