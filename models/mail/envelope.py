"""`Envelope`: what the transport (SMTP, IMAP, an import) told us about a message, kept beside its bytes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field


@dataclass
class Envelope:
    """What the transport told us about a message, kept beside its bytes."""

    mail_from: str = ""
    rcpt_tos: list[str] = field(default_factory=list)
    source: str = "smtp"
    peer: str = ""
    received_at: float = field(default_factory=time.time)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    imap: dict | None = None  # account, folder, uidvalidity and uid of a message fetched over IMAP

    def to_json(self, **extra) -> bytes:
        """One line: JSON escapes every newline inside strings."""
        return json.dumps({**extra, **self.__dict__}, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        return cls.of(json.loads(data))

    @classmethod
    def of(cls, fields: dict) -> Envelope:
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})
