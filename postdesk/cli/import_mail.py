"""`postdesk import mbox|maildir PATH`: existing mail through the same spool and pipeline, with a summary."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

import typer

from postdesk.cli.common import err, fail, out
from postdesk.cli.workspace import open_for_writing


def import_mail(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="mbox or maildir"),
    path: Path = typer.Argument(..., help="The mbox file or Maildir folder."),
) -> None:
    """Bring existing mail in through the same spool and pipeline (mbox: mboxrd, `>From ` lines unescaped)."""
    from rich.progress import Progress

    from ingest.importer import MailboxReadError, open_mailbox, outcome, read_mailbox, spool_all

    try:
        box = open_mailbox(kind, path)  # before the data folder: a wrong path creates nothing
    except (MailboxReadError, OSError) as exc:
        fail(str(exc))
    with closing(box):  # an mbox holds its file open until it is closed
        try:
            total = len(box)
        except OSError as exc:
            fail(str(exc))
        service = open_for_writing(ctx, create=True)
        runner = service.runner()
        with Progress(console=err) as progress:
            spooled = progress.add_task("spooling", total=total)
            ids, sha256s = spool_all(read_mailbox(box), service.spool, lambda: progress.advance(spooled))
            stored, left = progress.add_task("storing", total=total), ids
            while left:
                if not runner.step():
                    time.sleep(1.0)  # serve's runner holds them, or the database is unavailable
                runner.finish_removals()
                left = service.spool.which(left, ("new", "cur"))
                progress.update(stored, completed=len(ids) - len(left))
            runner.close()
    erased = len(service.erasure_ledger().among(sha256s))
    with service.db.read() as session:
        counts = outcome(session, service.spool, ids, erased)
    dropped = ", erased {erased}" if erased else ""  # mail an erasure removed: not stored again
    out.print(
        ("imported {imported}, duplicates {duplicates}" + dropped + ", quarantined {quarantined}").format(**counts)
    )
