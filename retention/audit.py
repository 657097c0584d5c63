"""The audit trail: who erased or exported whose data, when, and how much; and the agents' actions
on the spam filter (retrain, activate, sender rules; their spam marks are written by the store).

"Whose" is the HMAC of the normalised address under the erasure ledger's key (kept outside the
database), never the address: the trail proves what was done without keeping the person.
"""

from __future__ import annotations

import getpass
import os

from sqlalchemy.orm import Session

from models import AuditEvent
from models.base import utcnow


def record(session: Session, actor: str, action: str, subject_hmac: str, details: dict) -> None:
    session.add(AuditEvent(at=utcnow(), actor=actor[:200], action=action, subject_hmac=subject_hmac, details=details))


def os_user() -> str:
    """Who runs a command, as the operating system knows them (the CLI's default actor)."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"os:uid {os.getuid()}"
