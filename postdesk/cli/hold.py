"""`postdesk hold add|list|remove`: legal holds, which keep a ticket or an address's mail from every
retention rule and every erasure while they last (`retention.holds`).

    postdesk hold add TICKET|ADDRESS --reason TEXT [--until YYYY-MM-DD]
    postdesk hold list [--json]
    postdesk hold remove HOLD_ID
"""

from __future__ import annotations

import json
from datetime import datetime, UTC

import typer
from rich.markup import escape
from rich.table import Table

from postdesk.cli.common import Verbs, fail, out
from postdesk.cli.workspace import open_for_reading, open_for_writing

group = Verbs(help="Legal holds: what no retention rule and no erasure may remove while they last.")


def parse_until(value: str | None) -> datetime | None:
    """When the hold ends: a date (its start, 00:00 UTC) or an ISO date and time (UTC unless it says)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--until {value!r} is not a date such as 2027-06-30 (or 2027-06-30T12:00)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@group.command("add")
def hold_add(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A ticket id, or an address."),
    reason: str = typer.Option(..., "--reason", help="Why (a case number, say); shown when the hold refuses."),
    until: str | None = typer.Option(
        None, "--until", help="When the hold ends: a date (00:00 UTC) or date and time; none: when removed."
    ),
    actor: str | None = typer.Option(None, "--actor", help="Who does this, for the audit trail."),
) -> None:
    """Put a ticket or an address under legal hold."""
    from models.base import utcnow
    from retention.audit import os_user
    from retention.holds import HoldError, add, describe

    ends = parse_until(until)
    app = open_for_writing(ctx, create=False)
    try:
        with app.db.write() as session:
            hold = add(session, app.erasure_ledger(), target, reason, ends, actor or os_user(), utcnow())
    except HoldError as exc:
        fail(str(exc))
    out.print(f"added {describe(hold)}", highlight=False, markup=False)


@group.command("list")
def hold_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The legal holds, those that ended included."""
    from sqlalchemy import select

    from models import LegalHold
    from models.base import utcnow

    app = open_for_reading(ctx)
    now = utcnow()
    with app.db.read() as session:
        rows = [
            {
                "id": h.id,
                "ticket": h.ticket_id,
                "address": h.address,
                "reason": h.reason,
                "by": h.actor,
                "created_at": h.created_at.isoformat(),
                "until": h.until.isoformat() if h.until else None,
                "in_force": h.until is None or _aware(h.until) > now,
            }
            for h in session.scalars(select(LegalHold).order_by(LegalHold.id))
        ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "on", "until", "in force", "reason", "by")
    for r in rows:
        on = f"ticket {r['ticket']}" if r["ticket"] is not None else str(r["address"])
        table.add_row(
            *(
                escape(str(cell))
                for cell in (
                    r["id"],
                    on,
                    str(r["until"] or "removed")[:16],
                    "yes" if r["in_force"] else "ended",
                    r["reason"],
                    r["by"],
                )
            )
        )
    out.print(table)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives naive UTC back


@group.command("remove")
def hold_remove(
    ctx: typer.Context,
    hold_id: int,
    actor: str | None = typer.Option(None, "--actor", help="Who does this, for the audit trail."),
) -> None:
    """End a legal hold."""
    from retention.audit import os_user
    from retention.holds import HoldError, describe, remove

    app = open_for_writing(ctx, create=False)
    try:
        with app.db.write() as session:
            hold = remove(session, app.erasure_ledger(), hold_id, actor or os_user())
    except HoldError as exc:
        fail(str(exc))
    out.print(f"removed {describe(hold)}", highlight=False, markup=False)
