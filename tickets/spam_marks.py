"""An agent's "spam" / "not spam" on a stored message: the filter learns it now, the ticket moves.

This is the service method the web view and the command line call. "Not spam" also creates the
contact that spam never got, so the contact list stays free of spammers until a human says otherwise.
The rows are the message store's (`MessageStore.label`); this reads the message and makes its features.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier.filter import SpamFilter
from models import Message
from models.mail.parse import parse
from tickets.store import MessageStore


def mark_message(
    session: Session,
    message_id: int,
    label: str,
    *,
    store: MessageStore,
    spam_filter: SpamFilter,
    actor: str,
    source: str = "agent",
) -> str:
    """Learn a stored message as `label` (unlearning the other label first); returns the ledger outcome."""
    received_at = session.scalar(select(Message.received_at).where(Message.id == message_id))
    if received_at is None:
        raise LookupError(f"no message {message_id}")
    features = spam_filter.features(parse(store.raw_of(session, message_id), received_at=received_at))
    return store.label(session, message_id, label, features, source=source, actor=actor)
