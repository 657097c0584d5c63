"""The mail we write: replies, forwards, auto-acknowledgements and notifications, as bytes.

Every one is 7-bit (quoted-printable or base64 bodies, RFC 2047 headers) with CRLF line ends,
so any relay takes it as it is and the bytes stored are the bytes sent.
"""

from __future__ import annotations

import email
import email.policy
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from models.mail.message import Part

POLICY = email.policy.SMTP.clone(cte_type="7bit")
MAX_ADDRESSES = 50  # per To or Cc field of a reply
MAX_REFERENCES = 20  # the newest ids kept in References


class AddressError(ValueError):
    """An address field an agent typed that is not a list of plain addresses."""


@dataclass(frozen=True)
class Headers:
    """What threads our mail: its signed Message-ID and what it answers."""

    message_id: str  # without angle brackets
    in_reply_to: list[str]
    references: list[str]


def addresses(text: str) -> list[tuple[str, str]]:
    """(name, lower-cased address) of each address in a comma-separated field; AddressError if one is not plain."""
    if "\r" in text or "\n" in text:
        raise AddressError("an address field holds a line break")
    found = [(name.strip(), address.strip().lower()) for name, address in getaddresses([text]) if name or address]
    for name, address in found:
        local, at, domain = address.partition("@")
        if not at or not local or "." not in domain or any(c in address for c in ' <>(),;:"[]\\'):
            raise AddressError(f"{(address or name)!r} is not an address such as name@example.org")
    if len(found) > MAX_ADDRESSES:
        raise AddressError(f"more than {MAX_ADDRESSES} addresses in one field")
    return found


def references(message_id: str, earlier: list[str]) -> list[str]:
    """References of an answer to a message: its own References, then its Message-ID."""
    chain = [*earlier, message_id] if message_id else list(earlier)
    return chain[-MAX_REFERENCES:]


def mail(
    *,
    sender: tuple[str, str],
    to: list[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    subject: str,
    body: str,
    headers: Headers,
    now: datetime,
    extra: dict[str, str] | None = None,
    files: Sequence[Part] = (),
    forwarded: bytes | None = None,
) -> bytes:
    """The bytes of one message we send."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(*sender)
    msg["To"] = [_address(*a) for a in to]
    if cc:
        msg["Cc"] = [_address(*a) for a in cc]
    msg["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{headers.message_id}>"
    if headers.in_reply_to:
        msg["In-Reply-To"] = " ".join(f"<{i}>" for i in headers.in_reply_to)
    if headers.references:
        msg["References"] = " ".join(f"<{i}>" for i in headers.references)
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    for part in files:
        maintype, _, subtype = part.content_type.partition("/")
        msg.add_attachment(
            part.payload, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=part.filename
        )
    if forwarded is not None:
        msg.add_attachment(email.message_from_bytes(forwarded, policy=email.policy.default), filename="forwarded.eml")
    return msg.as_bytes(policy=POLICY)


def notification_id(hostname: str) -> str:
    """A Message-ID for a notification: not signed, so an agent's answer to it opens nothing."""
    return f"pd-notice.{secrets.token_hex(8)}@{hostname}"


def _address(name: str, address: str) -> Address:
    local, _, domain = address.partition("@")
    return Address(display_name=name.replace("\r", " ").replace("\n", " "), username=local, domain=domain)
