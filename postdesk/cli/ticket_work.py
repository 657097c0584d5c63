"""`postdesk tickets status|assign|note|merge|move|split`: the web view's work on tickets, from a shell.

The same functions as the web view (`tickets.work`), with the same checks and audit records; the
actor is the operating-system user (`os:<name>`), every department is in reach.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from postdesk.cli.common import fail, out, settings_of
from postdesk.cli.tickets import group
from postdesk.cli.workspace import open_for_writing


def _work(ctx: typer.Context, action: Callable) -> None:
    """Run `action(session, store, actor, now)` in one write transaction; its text, or the reason why not."""
    from models.base import utcnow
    from retention.audit import os_user
    from tickets.work import WorkError

    service = open_for_writing(ctx, create=False)
    try:
        with service.db.write() as session:
            said = action(session, service.store, os_user(), utcnow())
    except WorkError as exc:
        fail(str(exc))
    except LookupError as exc:
        fail(str(exc))
    finally:
        service.db.dispose()
    out.print(said, highlight=False, markup=False)


@group.command("status")
def status(ctx: typer.Context, ticket_id: int, new_status: str = typer.Argument(..., metavar="STATUS")) -> None:
    """Set a ticket's status: new, open, pending, resolved or closed."""
    from tickets import work

    def action(session, _store, actor, now):
        work.set_status(session, ticket_id, new_status, actor=actor, now=now)
        return f"ticket {ticket_id}: {new_status}"

    _work(ctx, action)


@group.command("assign")
def assign(
    ctx: typer.Context,
    ticket_id: int,
    agent: str | None = typer.Argument(None, help="an agent's email; none to unassign"),
) -> None:
    """Give a ticket to an agent of its department (or an admin), or to nobody."""
    from sqlalchemy import select

    from models import Agent
    from tickets import notify, work

    settings = settings_of(ctx)

    def action(session, _store, actor, now):
        agent_id = None
        if agent is not None:
            agent_id = session.scalar(select(Agent.id).where(Agent.email == agent.strip().lower()))
            if agent_id is None:
                raise work.WorkError(f"no agent {agent}")
        work.assign(
            session,
            ticket_id,
            agent_id,
            actor=actor,
            now=now,
            links=notify.Links(settings.web_url, settings.smtp_hostname),
        )
        return f"ticket {ticket_id}: {agent or 'nobody'}"

    _work(ctx, action)


@group.command("note")
def note(ctx: typer.Context, ticket_id: int, text: str) -> None:
    """Add an internal note to a ticket (never mailed)."""
    from tickets import work

    _work(
        ctx,
        lambda s, _store, actor, now: (
            f"note {work.add_note(s, ticket_id, None, text, actor=actor, now=now)} on ticket {ticket_id}"
        ),
    )


@group.command("merge")
def merge(ctx: typer.Context, ticket_id: int, into: int) -> None:
    """Move every message and note of TICKET_ID into INTO; TICKET_ID then leads there."""
    from tickets import work

    def action(session, store, actor, now):
        work.merge(session, store, ticket_id, into, actor=actor, now=now)
        return f"ticket {ticket_id} merged into {into}"

    _work(ctx, action)


@group.command("move")
def move(ctx: typer.Context, message_id: int, into: int) -> None:
    """Put a message on another ticket (its later replies follow it)."""
    from tickets import work

    def action(session, store, actor, now):
        work.move_message(session, store, message_id, into, actor=actor, now=now)
        return f"message {message_id} moved to ticket {into}"

    _work(ctx, action)


@group.command("split")
def split(ctx: typer.Context, message_id: int) -> None:
    """Take a message off its ticket into a new one, linked to the old."""
    from tickets import work

    _work(
        ctx,
        lambda s, store, actor, now: (
            f"message {message_id} is now ticket {work.split(s, store, message_id, actor=actor, now=now)}"
        ),
    )
