"""Redacting a person's address where it is mentioned in mail that stays (other people's messages).

An erasure removes the person's own mail; others may still quote or name their address in a
subject, a body or an attachment's name. `redact` replaces each mention, whatever its case, with
`PLACEHOLDER` in every copy of those messages that holds text: the message row (subject, bodies,
sender name), its ticket's subject, its attachments' names, its raw bytes and the full-text
index (through the store's hooks). In the raw bytes, a body part sent as base64 or
quoted-printable and a header sent as RFC 2047 encoded words are decoded, redacted and encoded
again; the rest of the message keeps its bytes. Attachment contents are not rewritten (a file
is evidence as received); the preview counts the messages, so an operator can look.
The raw sha256 stays: it names the message as received (deduplication, spam labels), not its text.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Sequence
from email import encoders
from email.header import Header, decode_header, make_header

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Attachment, Message, RawMessage, Ticket
from tickets.store.record import StoreHook

PLACEHOLDER = "[redacted]"
_CHUNK = 500


def mention(address: str) -> re.Pattern[str]:
    """The address as a whole address (not a part of a longer one), in any case."""
    return re.compile(r"(?<![\w.+-])" + re.escape(address) + r"(?![\w-]|\.\w)", re.IGNORECASE)


def mentions(session: Session, message_ids: Sequence[int], address: str) -> list[int]:
    """Those of these messages whose stored text names `address` (candidates come from the index)."""
    named, found = mention(address), []
    ids = sorted(set(message_ids))
    for i in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Message.id, Message.subject, Message.from_name, Message.text_body, Message.html_body).where(
                Message.id.in_(ids[i : i + _CHUNK])
            )
        )
        found += [row.id for row in rows if any(named.search(value or "") for value in row[1:])]
    return found


def redact(session: Session, hooks: Sequence[StoreHook], message_ids: Sequence[int], address: str) -> int:
    """Replace `address` in these messages' copies; returns how many messages changed."""
    named = mention(address)
    changed = []
    for message in session.scalars(select(Message).where(Message.id.in_(sorted(set(message_ids))))):
        texts = (message.subject, message.from_name, message.text_body, message.html_body)
        message.subject, message.from_name, message.text_body, message.html_body = (
            named.sub(PLACEHOLDER, value or "") for value in texts
        )
        touched = texts != (message.subject, message.from_name, message.text_body, message.html_body)
        raw = session.get(RawMessage, message.id)
        if raw is not None and (redacted := redact_raw(raw.raw, address)) != raw.raw:
            raw.raw, touched = redacted, True
        for attachment in session.scalars(select(Attachment).where(Attachment.message_id == message.id)):
            attachment.filename = named.sub(PLACEHOLDER, attachment.filename)
        if message.ticket_id is not None:
            ticket = session.get_one(Ticket, message.ticket_id)
            ticket.subject = named.sub(PLACEHOLDER, ticket.subject)
        if touched:
            changed.append(message.id)
    session.flush()
    for hook in hooks:
        hook.rewritten(session, changed)
    return len(changed)


def redact_raw(raw: bytes, address: str) -> bytes:
    """The raw message with `address` replaced: as bytes, and inside encoded parts and headers."""
    named_bytes = re.compile(mention(address).pattern.encode(), re.IGNORECASE)
    raw = named_bytes.sub(PLACEHOLDER.encode(), raw)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    changed = False
    for part in message.walk():
        changed |= _redact_headers(part, mention(address))
        if part.is_multipart():
            continue
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding not in ("base64", "quoted-printable"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not named_bytes.search(payload):
            continue
        del part["Content-Transfer-Encoding"]
        part.set_payload(named_bytes.sub(PLACEHOLDER.encode(), payload))
        (encoders.encode_base64 if encoding == "base64" else encoders.encode_quopri)(part)
        changed = True
    if not changed:
        return raw
    return message.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


def _redact_headers(part, named: re.Pattern[str]) -> bool:
    """Headers written as RFC 2047 encoded words that name the address, decoded and redacted."""
    changed = False
    for name, value in list(part.items()):
        if "=?" not in str(value):
            continue
        try:
            text = str(make_header(decode_header(str(value))))
        except (LookupError, ValueError, UnicodeDecodeError):  # a broken encoded word holds no readable text
            continue
        if named.search(text):
            part.replace_header(name, Header(named.sub(PLACEHOLDER, text), "utf-8").encode())
            changed = True
    return changed
