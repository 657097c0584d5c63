"""Channel tokens: what the relays and mailing lists a message came through wrote on it.

A header block has two authors. The sender writes From, Subject, Date, the MIME and mailer headers;
the channel adds Received and Return-Path (relays), List-*, Sender, Errors-To, Precedence and the
like (list managers), and delivery and status notes (mail stores). Channel tokens name where mail
came through: relay hosts and IPs, the list, the recipient domain, the host that made the
Message-ID. In-corpus they are the strongest clues there are (the list a message came through
says ham), and on later mail they mislead: spam posted to a list that carried ham in training
scores as ham (issue 19). So each channel token starts with `CHANNEL_PREFIX`; `features` hashes
them into their own part of the feature space, and `model` lets their combined evidence change
the body's odds only within a bound: the channel may tip a message, never decide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from classifier.token_pieces import domain_tokens, log_bucket
from models.mail.message import ParsedMessage

CHANNEL_PREFIX = V = "via:"
CHANNEL_HEADER = re.compile(
    r"received|return-path|delivered-to|x-original-to|envelope-to|x-envelope-[\w-]+|delivery-date"
    r"|sender|x-sender|errors-to|precedence|list-[\w-]+|x-list[\w-]*|mailing-list|x-mailing-list"
    r"|x-beenthere|x-mailman-[\w-]+|x-loop|x-egroups-[\w-]+|x-yahoo-[\w-]+|x-apparently-to"
    r"|x-authentication-warning|x-originating-ip|x-original-date|x-mailscanner[\w-]*|x-virus-[\w-]+"
    r"|x-spam-[\w-]+|x-status|x-keywords|x-uidl|status|x-mime-autoconverted|old-return-path"
    r"|resent-[\w-]+|x-bulkmail"
)
_MAX_RECEIVED = 8
_MAX_RECIPIENTS = 20
_MAX_HEADER_VALUE = 512
_HOST = re.compile(r"\b(?:[a-z0-9][a-z0-9-]*\.)+[a-z][a-z0-9-]*\b", re.I)  # a letter in the last label
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_HELO = re.compile(r"^\s*from\s+(\S+)", re.I)
_FOOTER_RULE = re.compile(r"^(?:_{20,}|-{20,}|={20,}|-- ?)[ \t]*$", re.M)
_FOOTER_WORDS = ("mailing list", "listinfo", "sponsored by", "(un)subscription")
_FOOTER_SPAN = 1500  # a list footer is a few lines at the very end


@lru_cache(maxsize=4096)  # header names repeat from message to message
def is_channel_header(name: str) -> bool:
    """True for a header the channel adds (`name` lower-case)."""
    return CHANNEL_HEADER.fullmatch(name) is not None


def without_list_footer(text: str) -> str:
    """The text without the footer a list manager appended to it: from the first rule line near
    the end (Mailman's "____…", SourceForge's "----…" sponsor block, a "-- " line) that is followed
    by a list manager's words. The footer is the list's, not the sender's: channel, not body. It is
    recognised by its own words, not by the list headers, so a body reads the same under any headers."""
    tail = max(0, len(text) - _FOOTER_SPAN)
    if not any(mark in "\n" + text[tail:] for mark in ("\n__", "\n--", "\n==")):  # most mail: no rule line
        return text
    rule = _FOOTER_RULE.search(text, tail)
    while rule:
        if any(word in text[rule.end() :].lower() for word in _FOOTER_WORDS):
            return text[: rule.start()]
        rule = _FOOTER_RULE.search(text, rule.end())
    return text


def channel_tokens(msg: ParsedMessage) -> Iterator[str]:
    """Relay, list, recipient and Message-ID host tokens, and the channel's header names, each "via:…"."""
    yield from _received_tokens(msg.header_all("received")[:_MAX_RECEIVED])
    yield from _list_tokens(msg)
    for addr in (msg.to + msg.cc)[:_MAX_RECIPIENTS]:
        yield from domain_tokens(f"{V}to:domain:", addr.address.rpartition("@")[2][:80])
    _, at, domain = msg.message_id.rpartition("@")
    if at:
        yield f"{V}message-id:domain:" + domain.lower()[:60]
    names = [name for name, _ in msg.headers[:200] if is_channel_header(name)]
    yield from (f"{V}hdr:" + name[:40] for name in dict.fromkeys(names))
    yield f"{V}hdr:count:{log_bucket(len(names))}"


def _received_tokens(received: list[str]) -> Iterator[str]:
    """HELO names, and each relay host and IP once: the same hops recur down the chain."""
    yield f"{V}received:count:{log_bucket(len(received))}"
    hosts: dict[str, None] = {}
    ips: dict[tuple[str, ...], None] = {}
    for value in received:
        value = value[:_MAX_HEADER_VALUE].lower()
        helo = _HELO.match(value)
        if helo:
            yield f"{V}received:helo:" + helo.group(1)[:60]
        hops = value.partition(";")[0]
        hosts.update(dict.fromkeys(_HOST.findall(hops)[:6]))
        ips.update(dict.fromkeys(_IPV4.findall(hops)[:4]))
    for host in hosts:
        yield from domain_tokens(f"{V}received:host:", host)
    for a, b, c, d in ips:
        yield from (f"{V}received:ip:{a}.{b}", f"{V}received:ip:{a}.{b}.{c}", f"{V}received:ip:{a}.{b}.{c}.{d}")


def _list_tokens(msg: ParsedMessage) -> Iterator[str]:
    list_id = msg.header("list-id")
    if list_id:
        yield f"{V}list-id:" + list_id.lower().rpartition("<")[2].strip(" >")[:80]
    for name in ("list-unsubscribe", "list-post", "precedence"):
        value = msg.header(name)
        if value:
            yield from (f"{V}{name}:{host}" for host in _HOST.findall(value.lower()[:_MAX_HEADER_VALUE])[:3])
            yield f"{V}{name}:" + (value.lower()[:20] if name == "precedence" else "present")
