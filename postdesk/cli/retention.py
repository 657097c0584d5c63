"""`postdesk retention run [--dry-run] [RULE...]`: the retention rules by hand (serve runs them daily).

A dry run lists what each rule would remove, counts and ids; a run does it in small committed
batches with a progress bar and prints the counts. Interrupted, the same command finishes the work.
"""

from __future__ import annotations

import json

import typer

from postdesk.cli.common import Verbs, fail, out, progress_bar
from postdesk.cli.workspace import open_for_writing

group = Verbs(help="Retention: what is kept how long (rules in the settings), run by hand.")

IDS_SHOWN = 20  # ids listed per rule in a dry run's text; --json has them all


@group.command("run")
def retention_run(
    ctx: typer.Context,
    rules: list[str] | None = typer.Argument(
        None,
        help="Rules to run (default: all): spam, automatic, trash, closed, attachments, raw_mail, contacts, sweep.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
    as_json: bool = typer.Option(False, "--json"),
    actor: str | None = typer.Option(None, "--actor", help="Who does this, for the audit trail."),
):
    """Run the retention rules now (or show what they would remove)."""
    from postdesk.app import configure_logging
    from retention.runs import RetentionError

    app = open_for_writing(ctx, create=False)
    configure_logging(app.settings)
    retention = app.retention()
    names = rules or []
    try:
        retention.rules(names)
    except RetentionError as exc:
        fail(str(exc))
    reports = retention.dry_run(names) if dry_run else _run(retention, names, actor)
    if as_json:
        out.print_json(json.dumps({name: {"off": r.off, "due": r.due, "done": r.done} for name, r in reports.items()}))
        return
    for report in reports.values():
        out.print(_line(report, dry_run), highlight=False, markup=False)


def _run(retention, names: list[str], actor: str | None):
    from retention.audit import os_user

    try:
        with progress_bar() as progress:
            return retention.run(names, actor or os_user(), progress)
    except KeyboardInterrupt:
        fail("interrupted: what was done is committed; run the same command again to finish", 130)


def _line(report, dry_run: bool) -> str:
    if report.off:
        return f"{report.rule}: off (its number of days is 0)"
    if dry_run:
        ids = ", ".join(map(str, report.due[:IDS_SHOWN])) + (" …" if len(report.due) > IDS_SHOWN else "")
        return f"{report.rule}: {len(report.due)} {report.unit} due" + (f": {ids}" if ids else "")
    done = ", ".join(f"{name} {value}" for name, value in report.done.items()) or "nothing"
    return f"{report.rule}: {done}"
