"""`postdesk blobs sweep`: the attachment files under blobs/ that nothing uses any more."""

from __future__ import annotations

import json

import typer

from postdesk.cli.common import Verbs, fail, out
from postdesk.cli.workspace import open_for_writing

group = Verbs(help="Attachment files on disk.")


@group.command("sweep")
def sweep(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Remove blob files no stored message uses (a crash's leftovers); serve's runner also does it
    when it starts. Safe while serve runs. Exits non-zero when files the database counts are missing."""
    app = open_for_writing(ctx, create=False)
    swept = app.store.sweep(app.db)
    if as_json:
        out.print_json(json.dumps(swept))
    else:
        out.print(
            f"removed {swept['removed']} blobs nothing uses and {swept['temporary']} half-written files",
            highlight=False,
        )
    if swept["missing"]:
        fail(f"{swept['missing']} blob files the database counts are missing (restore them from a backup)")
