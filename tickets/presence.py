"""Who else has a ticket open: a row per (ticket, agent) saying "viewing" or "replying", as of when.

Kept in the database rather than in the web process, so agents served by different processes
(`postdesk web` beside `serve`, sharing PostgreSQL) see each other. The ticket page writes its
viewer's row when it loads and while it stays open (its script asks again every `POLL` seconds);
a row older than `EXPIRY` means the agent has gone, and is deleted at the next write on that ticket.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Agent, TicketPresence
from models.upsert import insert_ignore

POLL = 20  # seconds between the page's checks
EXPIRY = timedelta(seconds=3 * POLL)  # three missed checks: the page was closed
ACTIVITIES = ("viewing", "replying")


def seen(session: Session, ticket_id: int, agent_id: int, activity: str, now: datetime) -> None:
    """The agent is on the ticket now (`activity`: viewing or replying)."""
    activity = activity if activity in ACTIVITIES else "viewing"
    session.execute(
        delete(TicketPresence).where(TicketPresence.ticket_id == ticket_id, TicketPresence.seen_at < now - EXPIRY)
    )
    insert_ignore(
        session, TicketPresence, [{"ticket_id": ticket_id, "agent_id": agent_id, "activity": activity, "seen_at": now}]
    )
    row = session.get_one(TicketPresence, (ticket_id, agent_id))
    row.activity, row.seen_at = activity, now


def others(session: Session, ticket_id: int, agent_id: int, now: datetime) -> list[dict]:
    """The other agents on the ticket within `EXPIRY`: name and activity, replying first."""
    rows = session.execute(
        select(Agent.name, Agent.email, TicketPresence.activity)
        .join(Agent, Agent.id == TicketPresence.agent_id)
        .where(
            TicketPresence.ticket_id == ticket_id,
            TicketPresence.agent_id != agent_id,
            TicketPresence.seen_at >= now - EXPIRY,
        )
    )
    found = [{"name": name or email, "activity": activity} for name, email, activity in rows]
    return sorted(found, key=lambda o: (o["activity"] != "replying", o["name"]))
