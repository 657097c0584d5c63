"""Postdesk's own Message-IDs: they carry a ticket number signed with the server secret.

`<pd.1234.9f2c1a0b.<hmac>@host>` — a reply that references one belongs to ticket 1234
whoever sends it (rule a), because only we can make such an id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_OURS = re.compile(r"^pd\.(\d{1,12})\.([0-9a-f]{8})\.([0-9a-f]{20})@")


class MessageIdSigner:
    def __init__(self, secret: bytes, hostname: str):
        self.secret = secret
        self.hostname = hostname

    def _mac(self, ticket_id: int, nonce: str) -> str:
        return hmac.new(self.secret, f"{ticket_id}.{nonce}".encode(), hashlib.sha256).hexdigest()[:20]

    def make(self, ticket_id: int) -> str:
        """A fresh Message-ID (without angle brackets) for mail we send on a ticket."""
        nonce = secrets.token_hex(4)
        return f"pd.{ticket_id}.{nonce}.{self._mac(ticket_id, nonce)}@{self.hostname}"

    def ticket_of(self, message_id: str) -> int | None:
        """The ticket a Message-ID of ours points at; None for anyone else's or a forgery."""
        match = _OURS.match(message_id)
        if not match:
            return None
        ticket_id, nonce, mac = int(match[1]), match[2], match[3]
        return ticket_id if hmac.compare_digest(mac, self._mac(ticket_id, nonce)) else None
