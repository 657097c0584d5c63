"""The ledger of learned messages and the event log every process replays (rows in the database).

`learn` and `unlearn` change the ledger and append +1/-1 events in the caller's transaction; the
model itself changes when a `LiveModel` replays the events, in this process or any other. On
PostgreSQL event writers take an advisory lock, so event ids become visible in commit order and no
reader can skip one.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from classifier.features import Features
from models import SpamEvent, SpamLabel
from models.base import utcnow

_PG_LOCK = 0x5057_4D53  # advisory lock id: serialises spam event writers


def serialise_writers(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})


def _event(session: Session, delta: int, label: str, features: bytes, key: str) -> None:
    session.add(SpamEvent(delta=delta, label=label, features=features, key=key, at=utcnow()))


def learn(
    session: Session, key: str, label: str, features: Features, source: str, message_id: int | None = None
) -> str:
    """Record that `key` is `label`; returns "learned", "relabelled", "refreshed" (same label, features
    from another tokenizer: the old ones are unlearned) or "unchanged"."""
    if label not in ("ham", "spam"):
        raise ValueError(f"label must be ham or spam, not {label!r}")
    serialise_writers(session)
    data = features.to_bytes()
    row = session.scalar(select(SpamLabel).where(SpamLabel.key == key))
    if row is not None and row.label == label and row.features == data:
        return "unchanged"
    outcome = "learned"
    if row is not None:
        _event(session, -1, row.label, row.features, key)
        outcome = "relabelled" if row.label != label else "refreshed"
    else:
        row = SpamLabel(key=key, message_id=message_id)
        session.add(row)
    row.label, row.features, row.source, row.learned_at = label, data, source, utcnow()
    _event(session, +1, label, data, key)
    session.flush()
    return outcome


def unlearn(session: Session, key: str) -> str | None:
    """Forget `key`; returns the label it had, or None when it was never learned."""
    serialise_writers(session)
    row = session.scalar(select(SpamLabel).where(SpamLabel.key == key))
    if row is None:
        return None
    _event(session, -1, row.label, row.features, key)
    session.execute(delete(SpamLabel).where(SpamLabel.id == row.id))
    return row.label


def label_of(session: Session, key: str) -> str | None:
    return session.scalar(select(SpamLabel.label).where(SpamLabel.key == key))


def last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(SpamEvent.id))) or 0


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(SpamLabel.label, func.count()).group_by(SpamLabel.label)).tuples().all()
    return {"ham": 0, "spam": 0, **dict(rows)}
