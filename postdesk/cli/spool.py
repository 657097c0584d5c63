"""`postdesk spool list|retry`: entries that failed too often, with their reasons; put one back."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from postdesk.cli.common import Verbs, fail, out, settings_of
from postdesk.cli.workspace import require_data_folder

group = Verbs(help="Look at and repair the inbound spool.")


def _spool(ctx: typer.Context):
    """The data folder's spool (these commands need no database)."""
    from ingest.spool import Spool

    settings = settings_of(ctx)
    require_data_folder(settings)
    return Spool(settings.spool_dir)


@group.command("list")
def spool_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Entries that failed too often, with their reasons."""
    spool = _spool(ctx)
    rows = [
        {
            "id": e.id,
            "source": e.envelope.source,
            "attempts": e.envelope.attempts,
            "size": len(e.raw),
            "errors": e.envelope.errors,
        }
        for e in spool.bad()
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(f"waiting: {spool.depth()['new']}, bad: {len(rows)}")
    for row in rows:
        out.print(
            f"{row['id']}  {row['source']}  {row['size']} bytes  {row['attempts']} attempts: "
            f"{row['errors'][-1] if row['errors'] else ''}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@group.command("retry")
def spool_retry(ctx: typer.Context, entry_id: str) -> None:
    """Put a bad entry back in the queue."""
    from ingest.spool import SpoolError

    spool = _spool(ctx)
    if Path(entry_id).name != entry_id or entry_id.startswith("."):  # an id, never a path out of bad/
        fail(f"no entry {entry_id} in spool/bad")
    try:
        spool.retry(entry_id)
    except (SpoolError, OSError, ValueError) as exc:
        fail(str(exc))
    out.print(f"{entry_id} is back in the queue")
