"""`postdesk status`: spool depth, bad entries, database reachability and free disk."""

from __future__ import annotations

import json
import shutil

import typer

from postdesk.cli.common import out
from postdesk.cli.workspace import open_for_reading


def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Spool depth, bad entries, database and disk state."""
    from sqlalchemy import make_url

    service = open_for_reading(ctx)  # a database that is down is reported, not an error
    depth = service.spool.depth()
    disk = shutil.disk_usage(service.settings.data_dir)
    report = {
        "data_dir": str(service.settings.data_dir.resolve()),
        "spool": {"waiting": depth["new"], "in_progress": depth["cur"], "bad": depth["bad"]},
        "database": {
            "url": make_url(service.settings.sqlalchemy_url).render_as_string(hide_password=True),
            "reachable": service.db.ping(),
        },
        "disk": {"free_bytes": disk.free, "total_bytes": disk.total, "low": disk.free < service.settings.min_free_disk},
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    for section, values in report.items():
        out.print(
            f"[bold]{section}[/bold]: "
            + (", ".join(f"{k}={v}" for k, v in values.items()) if isinstance(values, dict) else str(values))
        )
