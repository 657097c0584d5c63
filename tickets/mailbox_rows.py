"""Mailbox, alias and department rows made to match the mailboxes in the settings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, Mailbox, MailboxAlias
from models.settings import MailboxConfig
from models.upsert import insert_ignore


def sync_mailboxes(session: Session, configs: list[MailboxConfig]) -> dict[str, int]:
    """Make the rows match the settings; returns canonical address → mailbox id."""
    insert_ignore(session, Department, [{"name": c.department} for c in configs])
    departments = {d.name: d.id for d in session.scalars(select(Department))}
    insert_ignore(
        session, Mailbox, [{"address": c.address, "department_id": departments[c.department]} for c in configs]
    )
    boxes = {m.address: m for m in session.scalars(select(Mailbox))}
    for config in configs:
        boxes[config.address].department_id = departments[config.department]
    insert_ignore(
        session,
        MailboxAlias,
        [{"address": alias, "mailbox_id": boxes[c.address].id} for c in configs for alias in c.aliases],
    )
    return {address: box.id for address, box in boxes.items()}
