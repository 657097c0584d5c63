"""Ten one-time recovery codes per agent, for a lost phone. Each is 50 random bits, so a
SHA-256 of it is enough to keep (a slow hash guards guessable secrets such as passwords)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import RecoveryCode

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def _normal(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _hash(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def looks_like_one(code: str) -> bool:
    return len(_normal(code)) == 10


def replace_codes(session: Session, agent_id: int) -> list[str]:
    """New codes (shown once), the old ones void."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent_id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(10)) for _ in range(COUNT)]
    session.add_all(RecoveryCode(agent_id=agent_id, code_hash=_hash(c)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def use_code(session: Session, agent_id: int, code: str, now: datetime) -> bool:
    """True and the code spent, if it is one of the agent's unused codes."""
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.agent_id == agent_id, RecoveryCode.code_hash == _hash(code), RecoveryCode.used_at.is_(None)
        )
    )
    if row is None:
        return False
    row.used_at = now
    return True


def left(session: Session, agent_id: int) -> int:
    return len(
        session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.agent_id == agent_id, RecoveryCode.used_at.is_(None))
        ).all()
    )
