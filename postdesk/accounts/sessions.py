"""Server-side sessions of the web view. The browser holds a random token; the database holds its
SHA-256, so a copy of the database signs no one in. A session ends when the agent signs out, after
`idle` without a request, or `lifetime` after it began. Every step of signing in (password, second
factor, ...) ends the session it came with and starts a new one: a token seen before sign-in is
worthless after it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, joinedload

from models import WebSession

# last_seen_at is written at most this often: a write per page view would queue every reader
# behind SQLite's one writer.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    lifetime: timedelta


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)  # SQLite: naive UTC


def start(session: Session, agent_id: int, stage: str, now: datetime) -> tuple[str, WebSession]:
    """A new session; returns the token for the cookie and the row."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_hash(token),
        agent_id=agent_id,
        stage=stage,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    return token, row


def peek(session: Session, token: str | None, with_agent: bool = False) -> WebSession | None:
    """The session row of `token`, as it is (see `needs_write`, then `find`); `with_agent` loads
    its agent in the same query."""
    if not token:
        return None
    return session.get(WebSession, _hash(token), options=[joinedload(WebSession.agent)] if with_agent else None)


def find(session: Session, token: str | None, now: datetime, limits: Limits) -> WebSession | None:
    """The live session of `token`, touched; an expired one is removed and None returned."""
    if not token:
        return None
    row = session.get(WebSession, _hash(token))
    if row is None:
        return None
    if now - _aware(row.last_seen_at, now) > limits.idle or now - _aware(row.created_at, now) > limits.lifetime:
        session.delete(row)
        return None
    if now - _aware(row.last_seen_at, now) >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def needs_write(row: WebSession, now: datetime, limits: Limits) -> bool:
    """Whether looking this session up would change it (touch or expiry): only then is a write needed."""
    seen, began = _aware(row.last_seen_at, now), _aware(row.created_at, now)
    return now - seen >= TOUCH_EVERY or now - seen > limits.idle or now - began > limits.lifetime


def advance(session: Session, row: WebSession, stage: str, now: datetime) -> tuple[str, WebSession]:
    """The next step of signing in: the old session ends, a new one (new token) begins."""
    agent_id = row.agent_id
    session.delete(row)
    return start(session, agent_id, stage, now)


def end(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def end_all(session: Session, agent_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.agent_id == agent_id))
