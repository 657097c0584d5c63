"""`postdesk search WORDS…`: the web view's search from the command line (every department)."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from postdesk.cli.common import out
from postdesk.cli.workspace import open_for_reading


def search(
    ctx: typer.Context,
    words: list[str] = typer.Argument(..., help="Every word must occur."),
    limit: int = typer.Option(50, min=1, help="Most messages shown, newest first."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Messages holding every word (subject, body, names and addresses, attachment names), newest first."""
    from tickets import search as index

    service = open_for_reading(ctx)
    with service.db.read() as session:
        hits = index.find(session, " ".join(words), departments=None, limit=limit)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "message": h.message_id,
                        "ticket": h.ticket_id,
                        "received_at": h.received_at.isoformat(),
                        "from": h.from_address,
                        "subject": h.subject,
                    }
                    for h in hits
                ]
            )
        )
        return
    table = Table("message", "ticket", "received", "from", "subject")
    for h in hits:
        table.add_row(
            str(h.message_id),
            str(h.ticket_id),
            h.received_at.isoformat()[:16],
            escape(h.from_address),
            escape(h.subject),
        )
    out.print(table)
