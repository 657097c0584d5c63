"""Protocol (f), channel swap: a message's body under another message's list and relay headers.

A mail's header block has two authors. The sender writes From, To, Subject, Date, Message-ID, the
MIME headers and the mailer's own headers; the channel adds the rest on the way: relays add
Received and Return-Path, mailing lists add List-*, Sender, Errors-To, Precedence, X-BeenThere and
the like, and mail stores add delivery and status notes. `CHANNEL` names the second kind. It is the
bench's own list, written from RFC 5321/2369/2919 and the list managers' headers, not taken from
the tokenizer, so the protocol measures the filter rather than restating it.

`swapped(body, donor)` keeps `body`'s own headers and body bytes and puts `donor`'s channel headers
in place of its own; `without_channel(raw)` is the same message with no channel headers at all:
"the body alone". Work is on the raw bytes, so every filter reads the same messages.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

CHANNEL = re.compile(
    rb"(received|return-path|delivered-to|x-original-to|envelope-to|x-envelope-[\w-]+|delivery-date"
    rb"|sender|x-sender|errors-to|precedence|list-[\w-]+|x-list[\w-]*|mailing-list|x-mailing-list"
    rb"|x-beenthere|x-mailman-[\w-]+|x-loop|x-egroups-[\w-]+|x-yahoo-[\w-]+|x-apparently-to"
    rb"|x-authentication-warning|x-originating-ip|x-original-date|x-mailscanner[\w-]*|x-virus-[\w-]+"
    rb"|x-spam-[\w-]+|x-status|x-keywords|x-uidl|status|x-mime-autoconverted|old-return-path"
    rb"|resent-[\w-]+|x-bulkmail)",
    re.IGNORECASE,
)
_FIELD_START = re.compile(rb"^(?=[^ \t\r\n])", re.MULTILINE)


def split_header(raw: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its continuation lines and line end) and the rest: the empty
    line and the body. A message with no empty line is all header."""
    end = _header_end(raw)
    head, rest = raw[:end], raw[end:]
    starts = [m.start() for m in _FIELD_START.finditer(head)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    fields = [head[a:b] for a, b in zip(starts, starts[1:] + [len(head)], strict=True)]
    return [f for f in fields if f], rest


def field_name(field: bytes) -> bytes:
    return field.partition(b":")[0].strip()


def is_channel(field: bytes) -> bool:
    return CHANNEL.fullmatch(field_name(field)) is not None


def without_channel(raw: bytes) -> bytes:
    """The message with its channel headers taken out: what its sender wrote."""
    fields, rest = split_header(raw)
    return b"".join(f for f in fields if not is_channel(f)) + rest


def swapped(body: bytes, donor: bytes) -> bytes:
    """`body`'s own headers and body under `donor`'s channel headers (put first, where relays put theirs)."""
    own, rest = split_header(body)
    theirs, _ = split_header(donor)
    return b"".join([f for f in theirs if is_channel(f)] + [f for f in own if not is_channel(f)]) + rest


def has_list_headers(raw: bytes) -> bool:
    return any(
        field_name(f).lower() in (b"list-id", b"list-post", b"mailing-list", b"x-mailing-list")
        for f in split_header(raw)[0]
    )


def pairs(ham: Sequence[int], spam: Sequence[int], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """`n` (ham, spam) index pairs, each spam used once while it lasts, the ham drawn at random."""
    rng = random.Random(seed)
    spam_order = list(spam)
    rng.shuffle(spam_order)
    return [(rng.choice(list(ham)), spam_order[i % len(spam_order)]) for i in range(n)]


def _header_end(raw: bytes) -> int:
    """Index of the line ending that closes the header block (the empty line starts there)."""
    if raw.startswith((b"\n", b"\r\n")):
        return 0  # no header at all: the empty line comes first
    found = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0]
    if not found:
        return len(raw)
    i = min(found)
    return i + (1 if raw[i : i + 2] == b"\n\n" else 2)
