"""Raw message bytes → `ParsedMessage`, for any bytes at all: `parse` never raises.

Stages, in order:

1. `normalise_crlf`: every line ending becomes CRLF; `raw_sha256` hashes exactly those bytes, and
   `parse(raw).raw_sha256 == raw_sha256(raw)`. `parse` does not drop an mbox ``From `` line
   (the parser reads it as an envelope); callers reading mbox files call `strip_mbox_from` first
   so that the hash does not depend on the envelope.
2. Limits, checked on the raw bytes before any parser runs (`models.mail.mime_limits`, one regex pass): a header
   block over ``max_header_bytes`` is cut ("header-too-large"); more MIME delimiter lines than
   ``max_parts`` ("too-many-parts") or multipart/message nesting deeper than ``max_depth``
   ("too-deep") → only the header block is parsed and the body is kept, unsplit, as text.
3. The stdlib `email` parser (compat32, the tree mail-parser itself builds) makes the tree and
   its defects. Header fields are read with mail-parser's hardened helpers (`get_addresses`,
   `parse_mail_date`) and the lenient decoder of `models.mail.text_decoding`; what those helpers find
   wrong is recorded as mail-parser names it ("AddressHeaderDefect", "DateHeaderDefect").
   `mailparser.parse_from_bytes` itself is not called: it cost several times the stdlib tree
   (bench/results/parse.md), and everything it builds beyond the tree (bodies, attachments,
   addresses) the steps here build again.
4. Body and attachments come from our own iterative walk of that tree: mail-parser descends into
   message/rfc822 and reads unnamed non-text leaves (PDF, pgp-signature, calendar) as text, which
   is not the split a helpdesk wants. Body = text/plain and text/html leaves without a filename
   or an attachment disposition; every other leaf (message/* included) is an attachment.

Charsets: see `models.mail.text_decoding` (declared, else a lenient guess, each miss noted as a defect).

Addresses: each field is read up to ``max_addresses`` ("too-many-addresses"; the rest stays in the
raw mail). mail-parser finds the structure, display names are decoded here (one RFC 2047 decoder
for every name, control characters as spaces; line breaks in a From name are flagged
"from-name-control-characters"). The requester, `from_`, is the one From address; when From
names several ("multiple-from", all of them in `authors`) it is the one Sender, else no one.

Upstream rule (only with ``trusted_relays``): ``Authentication-Results`` whose authserv-id (first
token before ';') is a trusted relay, anywhere; X-Spam-Status/Flag/Score/Level only above the
topmost ``Received`` whose ``by`` host is a trusted relay (a sender writes everything below it).
Relays that append X-Spam headers at the bottom (SpamAssassin's default) are not read.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from email.message import Message
from typing import cast

from mailparser.dates import parse_mail_date
from mailparser.utils import as_string_safe, get_addresses

from models.mail.message import DOT_ATOM_ADDRESS, Address, ParsedMessage, Part
from models.mail.mime_limits import ParseLimits, fit_limits
from models.mail.text_decoding import clamp, decode, encoded_words, joined, lenient, scrub, unfolded

MAX_HEADER_VALUE_BYTES = 8 * 1024
MAX_HEADERS = 500
MAX_REFERENCES = 100  # the root and the 99 nearest ancestors are kept
BODY_TYPES = frozenset({"text/plain", "text/html"})
SPAM_HEADERS = frozenset({"x-spam-status", "x-spam-flag", "x-spam-score", "x-spam-level"})

# message/* parts are regenerated from the tree: 2,917 of the 3,000 corpus messages come out
# byte-identical with these settings; the rest differ by a space after an empty header.
_REGENERATE = email.policy.compat32.clone(linesep="\r\n", max_line_length=0)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ID = re.compile(r"<([^<>]*)>")
_BARE_ID = re.compile(r"[^\s<>]*@[^\s<>]*")
_ADDRESS = re.compile(r'[^\s@<>()\[\],;:"\\]+@[^\s@<>()\[\],;:"\\]+')
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,127}/[a-z0-9!#$&^_.+-]{1,127}")  # RFC 6838 names
_NAME_BREAK = re.compile("[\x00-\x08\x0a-\x1f\x7f]+")  # what a display name must not hold: line breaks and the like
_BY_HOST = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)


def silence_mailparser() -> None:
    """mail-parser warns about every part type it leaves alone and logs whole header values
    (personal data) when it cannot decode one; none of it belongs in our logs."""
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)


def normalise_crlf(raw: bytes) -> bytes:
    """Every line ending (LF, CRLF, lone CR) as CRLF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def raw_sha256(raw: bytes) -> str:
    """Hex sha256 of the CRLF-normalised bytes: the identity used for deduplication."""
    return hashlib.sha256(normalise_crlf(raw)).hexdigest()


def strip_mbox_from(raw: bytes) -> bytes:
    """The message without a leading mbox ``From `` envelope line."""
    return raw.partition(b"\n")[2] if raw.startswith(b"From ") else raw


DEFAULT_LIMITS = ParseLimits()


def parse(
    raw: bytes,
    *,
    received_at: datetime,
    limits: ParseLimits = DEFAULT_LIMITS,
    trusted_relays: Sequence[str] = (),
) -> ParsedMessage:
    """Parse one message; any bytes give a `ParsedMessage` (see the module notes)."""
    raw = normalise_crlf(raw)
    sha = hashlib.sha256(raw).hexdigest()
    received_at = _aware(received_at)
    try:
        return _parse(raw, sha, received_at, limits, trusted_relays)
    except Exception as exc:  # the contract is "never raise": keep the mail, name the failure
        return _unparsed(raw, sha, received_at, type(exc).__name__)


def _parse(raw: bytes, sha: str, received_at: datetime, limits: ParseLimits, trusted: Sequence[str]) -> ParsedMessage:
    flags: list[str] = []
    mime, unsplit = fit_limits(raw, limits, flags)
    msg, defects = _tree(mime)
    body = _walk(msg, defects) if unsplit is None else _Body(text=[lenient(unsplit)])
    fields = _Headers(msg, defects, limits.max_addresses)
    addresses = fields.addresses
    authors = addresses("from")
    requester = _requester(authors, fields)
    to, cc, reply_to = addresses("to"), addresses("cc"), addresses("reply-to")
    flags.extend(dict.fromkeys(fields.flags))
    return ParsedMessage(
        raw_sha256=sha,
        message_id=_message_id(fields.first("message-id"), sha, flags),
        subject=fields.first("subject") or "",
        from_=requester,
        authors=authors if len(authors) > 1 else [],
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=_date(fields.raw("date"), received_at, flags, defects),
        in_reply_to=_capped(_ids(fields.first("in-reply-to") or "")),
        references=_capped(_ids(" ".join(fields.all("references")))),
        headers=fields.listing(),
        text=joined(body.text),
        html="\n".join(body.html),
        attachments=body.parts,
        defects=list(dict.fromkeys(defects)),
        flags=flags,
        upstream=_upstream(fields, trusted) if trusted else {},
    )


def _unparsed(raw: bytes, sha: str, received_at: datetime, reason: str) -> ParsedMessage:
    return ParsedMessage(
        raw_sha256=sha,
        message_id=f"{sha}@postdesk.invalid",
        date=received_at,
        text=joined([lenient(raw)]),
        defects=[reason],
        flags=["parse-failed"],
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the tree --------------------------------------------------------------------------------


def _tree(data: bytes) -> tuple[Message, list[str]]:
    """The compat32 tree and the names of the defects the parser noted in it."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    return msg, sorted({type(d).__name__ for node in _nodes(msg) for d in node.defects})


def _nodes(msg: Message) -> Iterator[Message]:
    """Every part, depth-first in order, without recursion; message/* parts are not entered."""
    stack = [msg]
    while stack:
        node = stack.pop()
        yield node
        if _is_container(node):
            stack.extend(reversed(cast(list[Message], node.get_payload())))


def _is_container(node: Message) -> bool:
    return node.get_content_maintype() == "multipart" and node.is_multipart()


@dataclass
class _Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


def _walk(msg: Message, defects: list[str]) -> _Body:
    body = _Body()
    for node in _nodes(msg):
        if not _is_container(node):
            _take(node, _metadata(node), body, defects)
    _mark_cid_inline(body.parts, "\n".join(body.html).lower())
    return body


def _metadata(node: Message) -> Message:
    """The part's naming fields with undeclared 8-bit bytes decoded: compat32 mangles them."""
    view = Message()
    for name, value in node.raw_items():
        if name.lower() in ("content-type", "content-disposition", "content-id"):
            view[name] = unfolded(value)
    return view


def _take(node: Message, meta: Message, body: _Body, defects: list[str]) -> None:
    """A leaf as body text, as an attachment, or both (named text shown inline)."""
    ctype = node.get_content_type()
    filename = _filename(meta, defects)
    is_text = _is_text_body(node, ctype, bool(filename))
    if filename or not is_text:
        body.parts.append(_part(node, meta, ctype, filename))
    if is_text and (text := decode(_payload(node), node.get_content_charset(), defects)):
        (body.html if ctype == "text/html" else body.text).append(text)


def _is_text_body(node: Message, ctype: str, named: bool) -> bool:
    """text/plain or text/html (or a multipart missing its boundary, read as text), not
    disposed as an attachment; a named one only when explicitly inline."""
    disposition = node.get_content_disposition()
    readable = ctype in BODY_TYPES or node.get_content_maintype() == "multipart"
    return readable and disposition != "attachment" and (not named or disposition == "inline")


def _part(node: Message, meta: Message, ctype: str, filename: str) -> Part:
    return Part(
        filename=filename,
        content_type=ctype if _MIME_TYPE.fullmatch(ctype) else "application/octet-stream",
        payload=_payload(node),
        content_id=_content_id(meta.get("content-id", "")),
        inline=node.get_content_disposition() == "inline",
    )


def _content_id(value: str) -> str:
    value = _CONTROL.sub("", value)
    return next(iter(_ids(value)), value.strip().strip("<>").strip())


def _mark_cid_inline(parts: list[Part], html: str) -> None:
    for part in parts:
        part.inline = part.inline or bool(part.content_id and f"cid:{part.content_id.lower()}" in html)


def _payload(node: Message) -> bytes:
    """The decoded bytes of a leaf; message/* parts are regenerated from their parsed form."""
    if not node.is_multipart():
        return cast(bytes | None, node.get_payload(decode=True)) or b""
    try:
        whole = node.as_bytes(policy=_REGENERATE)
    except (LookupError, UnicodeError):  # the generator re-applies charsets; mail-parser's helper copes
        whole = normalise_crlf(as_string_safe(node).encode("utf-8", "surrogateescape"))
    return whole.partition(b"\r\n\r\n")[2] if node.keys() else whole[2:]


def _filename(meta: Message, defects: list[str]) -> str:
    name = meta.get_filename()
    return scrub(encoded_words(name, defects)) if name else ""


# --- header fields ---------------------------------------------------------------------------


class _Headers:
    """The top-level header fields: raw values by name, decoded on demand; `flags` notes what
    reading the address fields met (a cap, control characters in the From name)."""

    def __init__(self, msg: Message, defects: list[str], max_addresses: int) -> None:
        self.items = list(msg.raw_items())
        self.defects = defects
        self.max_addresses = max_addresses
        self.flags: list[str] = []
        self.by_name: dict[str, list[str]] = {}
        for name, value in self.items:
            self.by_name.setdefault(name.lower(), []).append(value)

    def raw(self, name: str) -> list[str]:
        return self.by_name.get(name, [])

    def all(self, name: str) -> list[str]:
        return [self.decoded(value) for value in self.raw(name)]

    def first(self, name: str) -> str | None:
        return next((self.decoded(value) for value in self.raw(name)), None)

    def decoded(self, value: str) -> str:
        return clamp(_CONTROL.sub(" ", encoded_words(unfolded(value), self.defects)).strip(), MAX_HEADER_VALUE_BYTES)

    def listing(self) -> list[tuple[str, str]]:
        return [(name.lower(), self.decoded(value)) for name, value in self.items[:MAX_HEADERS]]

    def addresses(self, name: str) -> list[Address]:
        """The field's addresses, at most `max_addresses` of them (the rest stay in the raw mail)."""
        pairs: list[tuple[str, str]] = []
        for value in self.raw(name):
            pairs += _mailboxes(value, self.defects, self.max_addresses + 1 - len(pairs))
            if len(pairs) > self.max_addresses:
                self.flags.append("too-many-addresses")
                break
        names = [encoded_words(display, self.defects) for display, _ in pairs[: self.max_addresses]]
        if name == "from" and any(_NAME_BREAK.search(display) for display in names):
            self.flags.append("from-name-control-characters")
        kept = zip(names, pairs[: self.max_addresses], strict=True)
        found = (_address(display, address, self.defects) for display, (_, address) in kept)
        return [a for a in found if a is not None]


# One address as most mail writes it: bare, after a plain name, or after a simple quoted name.
_SIMPLE_MAILBOX = re.compile(
    rf"\s*(?:({DOT_ATOM_ADDRESS})|([A-Za-z0-9 .\'_-]*?)\s*<({DOT_ATOM_ADDRESS})>"
    rf'|"([^"\\=]*)"\s*<({DOT_ATOM_ADDRESS})>)\s*'
)


def simple_mailbox(value: str) -> tuple[str, str] | None:
    """(name, address) of a header value in one of the simple forms, as mail-parser reads it
    (tests/ingest/test_parse.py checks that); None for anything else."""
    found = _SIMPLE_MAILBOX.fullmatch(value)
    if found is None:
        return None
    if found[1]:
        return "", found[1]
    return (" ".join(found[2].split()), found[3]) if found[3] else (found[4], found[5])


def _mailboxes(value: str, defects: list[str], limit: int) -> list[tuple[str, str]]:
    """mail-parser's (name, address) pairs, names still encoded, for the first `limit` items of
    the value at most; an item it could not read is a "bad-address".

    A simple value, as nine in ten of the corpus's From/To/Cc/Reply-To values are, takes the fast
    path: mail-parser is slow on every value (bench/results/parse.md). A long list is cut before
    mail-parser reads it, whose time grows with every address it parses.
    """
    value = unfolded(value)
    if (simple := simple_mailbox(value)) is not None:
        return [simple]
    notes: list[dict] = []
    pairs = get_addresses(_first_items(value, limit), defects=notes)
    if notes:
        defects.append("AddressHeaderDefect")
    defects.extend("bad-address" for note in notes if not note.get("recovered"))
    return pairs[:limit]


# A quoted string, a comment, an angle address, a comma, or a run of anything else: enough of an
# address list's grammar to find the commas that separate its items.
_LIST_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|\((?:[^()\\]|\\.)*\)?|<[^<>]*>?|,|[^",(<]+|.', re.DOTALL)


def _first_items(value: str, limit: int) -> str:
    """The value up to its `limit`-th top-level comma (the whole value when it has fewer)."""
    commas = 0
    for token in _LIST_TOKEN.finditer(value):
        if token[0] == ",":
            commas += 1
            if commas >= limit:
                return value[: token.start()]
    return value


def _address(name: str, address: str, defects: list[str]) -> Address | None:
    """An address that looks like one, lower-cased, with its decoded name on one line."""
    address = address.strip().lower()
    if _ADDRESS.fullmatch(address):
        name = _CONTROL.sub(" ", _NAME_BREAK.sub(" ", name)).strip()
        return Address("" if name.lower() == address else name, address)
    if address or name:
        defects.append("bad-address")
    return None


def _requester(authors: list[Address], fields: _Headers) -> Address | None:
    """Whom the mail is from: its one From address; when From names several, the one Sender
    (RFC 5322 3.6.2 requires it then), else no one: the first of several is anyone's pick."""
    if len(authors) <= 1:
        return next(iter(authors), None)
    fields.flags.append("multiple-from")
    senders = fields.addresses("sender")
    return senders[0] if len(senders) == 1 else None


def _message_id(value: str | None, sha: str, flags: list[str]) -> str:
    ids = _ids(value or "")
    if ids:
        return ids[0]
    flags.append("message-id-invalid" if value else "message-id-missing")
    return f"{sha}@postdesk.invalid"


def _ids(value: str) -> list[str]:
    """Message-IDs without brackets: the ``<...>`` tokens, else the bare tokens holding an '@'."""
    found = _ID.findall(value) or _BARE_ID.findall(value)
    return [i for i in ("".join(token.split()) for token in found) if i]


def _capped(ids: list[str]) -> list[str]:
    return ids if len(ids) <= MAX_REFERENCES else ids[:1] + ids[-(MAX_REFERENCES - 1) :]


def _date(values: list[str], received_at: datetime, flags: list[str], defects: list[str]) -> datetime:
    if not values or not values[0].strip():
        flags.append("date-missing")
        return received_at
    result = parse_mail_date(values[0])
    if result.reasons:
        defects.append("DateHeaderDefect")
    parsed = result.value or _stdlib_date(values[0])
    if parsed is None:
        flags.append("date-invalid")
    return parsed or received_at


def _stdlib_date(value: str) -> datetime | None:
    """Laxer than mail-parser: reads dates without a zone (taken as UTC)."""
    try:
        return _aware(email.utils.parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _upstream(fields: _Headers, trusted: Sequence[str]) -> dict[str, list[str]]:
    """Verdicts written by our own relays (rule in the module notes)."""
    relays = {relay.lower() for relay in trusted}
    results = [("authentication-results", v) for v in fields.all("authentication-results") if _authserv(v) in relays]
    found: dict[str, list[str]] = {}
    for key, value in results + _spam_verdicts(fields, relays):
        found.setdefault(key, []).append(value)
    return found


def _spam_verdicts(fields: _Headers, relays: set[str]) -> list[tuple[str, str]]:
    """X-Spam-* fields above the topmost Received by a trusted relay; none without one."""
    seen: list[tuple[str, str]] = []
    for name, value in fields.items:
        key = name.lower()
        if key == "received" and _by_host(fields.decoded(value)) in relays:
            return seen
        if key in SPAM_HEADERS:
            seen.append((key, fields.decoded(value)))
    return []


def _by_host(received: str) -> str:
    found = _BY_HOST.search(received)
    return found[1].lower() if found else ""


def _authserv(value: str) -> str:
    return next(iter(value.split(";", 1)[0].split()), "").lower()
