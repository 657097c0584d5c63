"""The `postdesk` command line: serve, status, tickets, spool and import.

Every command reads the same settings (environment, `--config` TOML file, `--data-dir`);
errors are one readable line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ingest.imap_cli import imap_app
from ingest.importer import MailboxReadError, open_mailbox, outcome, read_mailbox, spool_all
from postdesk.app import App, configure_logging, serve as run_service
from postdesk.blobs_cli import blobs_app
from postdesk.privacy_cli import privacy_app
from retention.ledger import ErasureLedger
from postdesk.console import err, fail, open_app, out, settings_of
from postdesk.spam_cli import spam_app
from postdesk.settings import Settings, SettingsError, load_settings
from postdesk.settings_doc import settings_table, update_readme
from tickets.queries import list_tickets, ticket_detail

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Postdesk, a self-hosted email helpdesk.")
tickets_app = typer.Typer(no_args_is_help=True, help="Look at stored tickets.")
spool_app = typer.Typer(no_args_is_help=True, help="Look at and repair the inbound spool.")
app.add_typer(tickets_app, name="tickets")
app.add_typer(spool_app, name="spool")
app.add_typer(spam_app, name="spam")
app.add_typer(imap_app, name="imap", help="IMAP accounts: sync state and configuration checks.")
app.add_typer(blobs_app, name="blobs")
app.add_typer(privacy_app, name="privacy")
@app.callback()
def main(ctx: typer.Context,
         config: Optional[Path] = typer.Option(None, "--config", envvar="POSTDESK_CONFIG", help="TOML settings file."),
         data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data folder (overrides POSTDESK_DATA_DIR).")):
    overrides = {"data_dir": data_dir} if data_dir else {}
    if config is not None:
        os.environ["POSTDESK_CONFIG"] = str(config)
    ctx.obj = overrides


@app.command()
def serve(ctx: typer.Context):
    """Run the SMTP server and the runner until Ctrl-C or SIGTERM."""
    settings = settings_of(ctx)
    configure_logging(settings)

    def ready(port: int, service: App) -> None:
        address = settings.mailboxes[0].address
        out = Console(soft_wrap=True, highlight=False, markup=False)  # one line each, even piped: the commands stay copyable
        out.print(f"Postdesk is running. Data folder: {settings.data_dir.resolve()}")
        out.print(f"Database: {service.db.engine.url.render_as_string(hide_password=True)}")
        out.print(f"SMTP: {settings.smtp_host}:{port}, mailboxes: {', '.join(m.address for m in settings.mailboxes)}")
        out.print(f"Send a test mail:  swaks --server {settings.smtp_host}:{port} --to {address}")
        out.print(f"   or: python3 -c \"import smtplib; smtplib.SMTP('{settings.smtp_host}', {port})"
                  f".sendmail('me@example.com', ['{address}'], b'Subject: hello\\r\\n\\r\\nIt works.\\r\\n')\"")
        out.print("Then: postdesk tickets list", highlight=False)

    try:
        run_service(settings, on_ready=ready)
    except OSError as exc:
        fail(f"cannot start: {exc}")


@app.command("settings")
def settings_reference(readme: Optional[Path] = typer.Option(None, "--readme", help="Rewrite the table in this file.")):
    """Print every setting with its default and meaning, as Markdown."""
    if readme is not None:
        update_readme(readme)
        return
    out.print(settings_table(), markup=False, highlight=False, soft_wrap=True)


@app.command()
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")):
    """Spool depth, bad entries, database and disk state."""
    service = open_app(ctx, migrate=False)  # a database that is down is reported, not an error
    depth = service.spool.depth()
    disk = shutil.disk_usage(service.settings.data_dir)
    report = {
        "data_dir": str(service.settings.data_dir.resolve()),
        "spool": {"waiting": depth["new"], "in_progress": depth["cur"], "bad": depth["bad"]},
        "database": {"url": service.db.engine.url.render_as_string(hide_password=True),
                     "reachable": service.db.ping()},
        "disk": {"free_bytes": disk.free, "total_bytes": disk.total,
                 "low": disk.free < service.settings.min_free_disk},
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    for section, values in report.items():
        out.print(f"[bold]{section}[/bold]: " + (", ".join(f"{k}={v}" for k, v in values.items())
                                                 if isinstance(values, dict) else str(values)))


@tickets_app.command("list")
def tickets_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json"),
                 queue: Optional[str] = typer.Option(None, help="inbox, review or spam"),
                 status: Optional[str] = typer.Option(None), limit: int = typer.Option(50, min=1)):
    """The newest tickets."""
    service = open_app(ctx)
    with service.db.read() as session:
        rows = list_tickets(session, queue=queue, status=status, limit=limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "status", "queue", "messages", "contact", "subject")
    for row in rows:
        table.add_row(*map(escape, (str(row["id"]), row["status"], row["queue"], str(row["messages"]),
                                    row["contact"] or "", row["subject"])))  # mail text is not markup
    out.print(table)


@tickets_app.command("show")
def tickets_show(ctx: typer.Context, ticket_id: int, as_json: bool = typer.Option(False, "--json")):
    """One ticket with its thread: messages, participants, attachments, flags, threading rule."""
    service = open_app(ctx)
    with service.db.read() as session:
        detail = ticket_detail(session, ticket_id)
    if detail is None:
        fail(f"no ticket {ticket_id}")
    if as_json:
        out.print_json(json.dumps(detail))
        return
    detail = {k: escape(v) if isinstance(v, str) else v for k, v in detail.items()}  # mail text is not markup
    state = escape(f"[{detail['status']}, {detail['queue']}]")
    out.print(f"[bold]#{detail['id']}[/bold] {detail['subject']}  {state}", highlight=False)
    out.print(f"department: {detail['department']}  contact: {detail['contact']}  "
              f"linked: {detail['linked_ticket']}", highlight=False)
    out.print("participants: " + ", ".join(detail["participants"]), highlight=False, markup=False)
    for m in detail["messages"]:
        out.rule(escape(f"message {m['id']} · rule {m['thread_rule']} · {m['date']}"))
        out.print(f"From: {m['from_name']} <{m['from']}>\nSubject: {m['subject']}", highlight=False, markup=False)
        if m["flags"]:
            out.print("flags: " + ", ".join(m["flags"]), highlight=False, markup=False)
        for a in m["attachments"]:
            out.print(f"  attachment {a['id']}: {a['filename']} ({a['sniffed_type']}, {a['size']} bytes)",
                      highlight=False, markup=False)
        out.print(m["text"][:2000], highlight=False, markup=False)


@spool_app.command("list")
def spool_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")):
    """Entries that failed too often, with their reasons."""
    service = open_app(ctx)
    rows = [{"id": e.id, "source": e.envelope.source, "attempts": e.envelope.attempts,
             "size": len(e.raw), "errors": e.envelope.errors} for e in service.spool.bad()]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(f"waiting: {service.spool.depth()['new']}, bad: {len(rows)}")
    for row in rows:
        out.print(f"{row['id']}  {row['source']}  {row['size']} bytes  {row['attempts']} attempts: "
                  f"{row['errors'][-1] if row['errors'] else ''}", highlight=False, markup=False, soft_wrap=True)


@spool_app.command("retry")
def spool_retry(ctx: typer.Context, entry_id: str):
    """Put a bad entry back in the queue."""
    service = open_app(ctx)
    if Path(entry_id).name != entry_id or entry_id.startswith("."):  # an id, never a path out of bad/
        fail(f"no entry {entry_id} in spool/bad")
    try:
        service.spool.retry(entry_id)
    except Exception as exc:
        fail(str(exc))
    out.print(f"{entry_id} is back in the queue")


@app.command("import")
def import_mail(ctx: typer.Context, kind: str = typer.Argument(..., help="mbox or maildir"),
                path: Path = typer.Argument(..., help="The mbox file or Maildir folder.")):
    """Bring existing mail in through the same spool and pipeline."""
    service = open_app(ctx)
    try:
        box = open_mailbox(kind, path)
        total = len(box)
    except (MailboxReadError, OSError) as exc:
        fail(str(exc))
    runner = service.runner()
    with Progress(console=err) as progress:
        spooled = progress.add_task("spooling", total=total)
        ids, sha256s = spool_all(read_mailbox(box), service.spool, lambda: progress.advance(spooled))
        stored, left = progress.add_task("storing", total=total), ids
        while left:
            if not runner.step():
                time.sleep(1.0)  # serve's runner holds them, or the database is unavailable
            runner.settle()
            left = service.spool.which(left, ("new", "cur"))
            progress.update(stored, completed=len(ids) - len(left))
        runner.close()
    erased = len(ErasureLedger(service.settings.erasure_ledger_path).among(sha256s))
    with service.db.read() as session:
        counts = outcome(session, service.spool, ids, erased)
    dropped = ", erased {erased}" if erased else ""  # mail an erasure removed: not stored again
    out.print(("imported {imported}, duplicates {duplicates}" + dropped + ", quarantined {quarantined}").format(**counts))
