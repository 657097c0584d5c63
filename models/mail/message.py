"""`ParsedMessage`: what the rest of Postdesk knows of a mail, independent of the parsing library."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# An address in its plain RFC 5321/5322 form (dot-atom local part, dotted host name), as a regex:
# the SMTP edge and the parser take a fast path for it and leave anything else to their libraries.
DOT_ATOM_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"


@dataclass(frozen=True)
class Address:
    """A mailbox as written in a header: display name and lower-cased address."""

    name: str
    address: str


@dataclass
class Part:
    """An attachment or inline part, with its decoded bytes."""

    filename: str  # as the sender gave it, decoded; may be empty or hostile (never used as a path)
    content_type: str  # declared, lower-case, e.g. "application/pdf"
    payload: bytes
    content_id: str = ""  # without angle brackets
    inline: bool = False


@dataclass
class ParsedMessage:
    """One message, parsed. Built by `models.mail.parse.parse`, which never raises."""

    raw_sha256: str  # of the CRLF-normalised raw bytes
    message_id: str  # without angle brackets; synthesised from raw_sha256 when missing
    subject: str = ""  # decoded, never containing CR or LF
    from_: Address | None = None  # the requester: the From address, or the Sender when From names several
    authors: list[Address] = field(default_factory=list)  # every From address, when From names several
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    date: datetime | None = None  # timezone-aware; the received time when missing or unreadable
    in_reply_to: list[str] = field(default_factory=list)  # Message-IDs without angle brackets
    references: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, decoded value), in order
    text: str = ""
    html: str = ""  # as received; sanitised only when displayed
    attachments: list[Part] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)  # MIME defect class names and decode problems
    flags: list[str] = field(default_factory=list)  # e.g. "date-missing", "message-id-missing", "too-many-parts"
    upstream: dict[str, list[str]] = field(default_factory=dict)  # trusted Authentication-Results / X-Spam-* values

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]
