"""MIME structure limits, checked on the raw bytes before any parser runs (one regex pass).

A header block over ``max_header_bytes`` is cut ("header-too-large"), and the fields threading,
routing and the agent need (`NEEDED_FIELDS`) that lie beyond the cut are still read: the first of
each, up to `MAX_NEEDED_FIELD_BYTES`. More MIME delimiter lines than ``max_parts``
("too-many-parts") or multipart/message nesting deeper than ``max_depth`` ("too-deep") mean the
parser sees only the header block and the body is kept unsplit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCAN = re.compile(
    rb"^content-type:(?P<value>[^\r\n]*(?:\r\n[ \t][^\r\n]*)*)|^--(?P<delim>[^\r\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
NEEDED_FIELDS = (
    "from",
    "sender",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "list-id",
    "auto-submitted",
    "precedence",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "x-postdesk-loop",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
)
MAX_NEEDED_FIELD_BYTES = 8 * 1024  # the parser keeps no more of a header value
_NEEDED = re.compile(
    rb"^(%b)[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*" % "|".join(NEEDED_FIELDS).encode(), re.IGNORECASE | re.MULTILINE
)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))', re.IGNORECASE)


@dataclass(frozen=True)
class ParseLimits:
    max_header_bytes: int = 256 * 1024
    max_parts: int = 500
    max_depth: int = 20
    max_addresses: int = 100  # read from each address field (From, To, Cc, Reply-To, Sender)


def fit_limits(raw: bytes, limits: ParseLimits, flags: list[str]) -> tuple[bytes, bytes | None]:
    """Bytes for the MIME parser, and the body to keep unsplit when over a structure limit."""
    head, body = _split(raw)
    if len(head) > limits.max_header_bytes:
        flags.append("header-too-large")
        head = _cut_header(head, limits.max_header_bytes)
        raw = head + b"\r\n" + body
    over = _over_limits(raw, limits)
    flags.extend(over)
    return (head, body) if over else (raw, None)


def _cut_header(head: bytes, limit: int) -> bytes:
    """The first `limit` bytes of the header block, then the needed fields found only after them."""
    kept = head[:limit]
    seen = {found[1].lower() for found in _NEEDED.finditer(kept)}
    rest = head.find(b"\n", limit - 1) + 1  # the first whole line after the cut
    rescued = []
    for found in _NEEDED.finditer(head, rest) if rest else ():
        if (name := found[1].lower()) not in seen:
            seen.add(name)
            rescued.append(found[0][:MAX_NEEDED_FIELD_BYTES].rstrip(b"\r\n \t") + b"\r\n")
    return kept.rstrip(b"\r\n") + b"\r\n" + b"".join(rescued)


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """Header block (with its last CRLF) and body."""
    if raw.startswith(b"\r\n"):
        return b"", raw[2:]
    head, blank, body = raw.partition(b"\r\n\r\n")
    return (head + b"\r\n", body) if blank else (raw, b"")


def _over_limits(raw: bytes, limits: ParseLimits) -> list[str]:
    parts, depth = _measure(raw, limits)
    return [
        flag
        for flag, hit in (("too-many-parts", parts > limits.max_parts), ("too-deep", depth > limits.max_depth))
        if hit
    ]


def _measure(raw: bytes, limits: ParseLimits) -> tuple[int, int]:
    """MIME delimiter lines, and the deepest multipart/message nesting; stops past a limit.

    A stack of open boundaries: a multipart Content-Type pushes its boundary, message/* pushes
    None; ``--b`` closes what was opened inside the previous part of b, ``--b--`` closes b.
    A small share of the parse's time (bench/results/parse.md).
    """
    stack: list[bytes | None] = []
    parts = depth = 0
    for match in _SCAN.finditer(raw):
        if match["delim"] is None:
            _open(stack, match["value"])
        else:
            parts += _close(stack, match["delim"].rstrip(b" \t"))
        depth = max(depth, len(stack))
        if parts > limits.max_parts or depth > limits.max_depth:
            break
    return parts, depth


def _open(stack: list[bytes | None], value: bytes) -> None:
    kind = value.lstrip()[:10].lower()
    if kind.startswith(b"message/"):
        stack.append(None)
    elif kind == b"multipart/":
        found = _BOUNDARY.search(value)
        stack.append(found and (found[1] if found[1] is not None else found[2]))


def _close(stack: list[bytes | None], line: bytes) -> int:
    """Unwind to the boundary a delimiter line names; 1 when the line opens a part."""
    if line in stack:
        del stack[_last(stack, line) + 1 :]
        return 1
    if line.endswith(b"--") and line[:-2] in stack:
        del stack[_last(stack, line[:-2]) :]
    return 0


def _last(stack: list[bytes | None], boundary: bytes) -> int:
    return len(stack) - 1 - stack[::-1].index(boundary)
