"""`postdesk privacy …`: erase a person's data for good, or export it for them.

    postdesk privacy erase ADDRESS|CONTACT_ID [--mode delete|anonymise] [--yes] [--actor NAME]
    postdesk privacy export ADDRESS -o FILE.zip [--actor NAME]

An erasure shows what will go, asks for the address to be typed back (or `--yes`), runs as one
resumable job (interrupted, the same command finishes it) and prints its receipt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from postdesk.cli.common import Verbs, err, fail, out, progress_bar
from postdesk.cli.workspace import open_for_writing

if TYPE_CHECKING:
    from postdesk.app import App
    from retention.erasure import Eraser, Mode, Person, Preview, Receipt

group = Verbs(help="A person's data: erase it for good, or export it for them.")

ActorOption = typer.Option(None, "--actor", help="Who does this, for the audit trail (default: the OS user).")

_PREVIEW_LINES = (
    ("tickets_requested", "tickets they requested (everything in them goes{shell})"),
    ("tickets_of_others", "tickets of others they wrote in (only their own messages go)"),
    ("messages", "messages"),
    ("messages_sent", "  of which they sent"),
    ("attachments", "attachments"),
    ("blob_files", "attachment files whose last use goes"),
    ("shared_blob_files_kept", "attachment files also used by mail that stays (kept)"),
    ("spam_labels", "messages the spam filter learned (forgotten in the live model and every saved version)"),
    ("imap_server_copies", "copies on IMAP servers"),
    ("recipient_rows_in_kept_mail", "rows naming them in mail others sent (the rows go, that mail stays)"),
    ("participant_rows", "ticket participant rows"),
    ("sender_rule", "sender allow/block rule"),
    ("contact", "contact"),
    ("spool_entries", "spool entries holding their mail (new/, cur/, bad/)"),
)


@group.command()
def erase(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="The person's address, or their contact id."),
    mode: str = typer.Option(
        "delete",
        "--mode",
        help="delete: every ticket they requested goes; anonymise: those tickets stay as empty shells for reporting.",
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to type the address back."),
    redact: bool = typer.Option(
        False,
        "--redact",
        help="Also replace their address with [redacted] where mail that stays (others' messages) mentions it.",
    ),
    actor: str | None = ActorOption,
    as_json: bool = typer.Option(False, "--json", help="Print only the receipt, as JSON."),
):
    """Erase every copy of a person's data, after a preview; prints the receipt."""
    from postdesk.app import configure_logging
    from retention.erasure import MODES, ErasureError
    from retention.ledger import normalise_address

    if mode not in MODES:
        fail(f"--mode must be delete or anonymise, not {mode!r}")
    app = open_for_writing(ctx, create=False)
    configure_logging(app.settings)
    engine = app.eraser()
    try:
        person = engine.person(target)
        preview = engine.preview(person)
    except ErasureError as exc:
        fail(str(exc))
    if not as_json:
        _show(app, person, preview, mode, redact)
    if not yes:
        typed = typer.prompt("Type the address to erase it for good", default="", show_default=False, err=True)
        if normalise_address(typed) != person.address:
            fail("not confirmed: nothing was erased")
    receipt = _run(engine, person, cast("Mode", mode), actor, redact)
    if not as_json:
        out.print(
            f"Erased. Receipt {receipt.id} (keep it: it proves the erasure without naming the person):", highlight=False
        )
    out.print_json(json.dumps(receipt.as_dict()))


def _run(engine: Eraser, person: Person, mode: Mode, actor: str | None, redact: bool) -> Receipt:
    from retention.audit import os_user
    from retention.erasure import ErasureError
    from retention.server_copies import ServerCopyError

    try:
        with progress_bar() as progress:
            return engine.erase(person, mode, actor or os_user(), progress, redact=redact)
    except (ErasureError, ServerCopyError) as exc:
        fail(f"{exc}. The erasure is unfinished: run the same command again to finish it")
    except KeyboardInterrupt:
        fail("interrupted. The erasure is unfinished: run the same command again to finish it", 130)


def _show(app: App, person: Person, preview: Preview, mode: str, redact: bool) -> None:
    from rich.table import Table

    from retention.ledger import normalise_address

    shell = ", kept as empty shells" if mode == "anonymise" else ""
    out.print(
        f"Erasing {person.address}"
        + (f" (contact {person.contact_id})" if person.contact_id else "")
        + f", mode {mode}. This will go:",
        highlight=False,
        markup=False,
    )
    table = Table("count", "what", show_header=False, box=None)
    counts = preview.counts()
    for name, label in _PREVIEW_LINES:
        table.add_row(str(counts[name]), label.format(shell=shell))
    out.print(table)
    if preview.mentioned_in:
        ids = ", ".join(map(str, preview.mentioned_in[:20])) + (" …" if len(preview.mentioned_in) > 20 else "")
        what = (
            "their address there is replaced with [redacted]"
            if redact
            else "they stay as they are; --redact replaces their address there with [redacted]"
        )
        out.print(f"Messages others sent that mention them (ids {ids}): {what}.", highlight=False, markup=False)
    configured = [
        name
        for name, patterns in (
            ("POSTDESK_SPAM_ALLOW", app.settings.spam_allow),
            ("POSTDESK_SPAM_BLOCK", app.settings.spam_block),
        )
        if person.address in (normalise_address(p) for p in patterns)
    ]
    for name in configured:
        err.print(
            f"[yellow]note:[/yellow] the setting {name} names this address: remove it from the configuration",
            highlight=False,
        )


@group.command()
def export(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="The person's address."),
    output: Path = typer.Option(..., "-o", "--output", help="The zip file to write."),
    actor: str | None = ActorOption,
):
    """Everything stored about a person, as a zip: JSON, the original .eml files, attachments, a README."""
    from retention.audit import os_user
    from retention.export import export_person
    from retention.ledger import normalise_address

    if output.exists():
        fail(f"{output} exists already: give a new file name")
    if not output.parent.is_dir():
        fail(f"{output.parent} is not a folder")
    app = open_for_writing(ctx, create=False)
    try:
        counts = export_person(
            app.db, app.store, app.erasure_ledger(), normalise_address(address), output, actor or os_user()
        )
    except OSError as exc:
        output.unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}")
    out.print(f"wrote {output}: " + ", ".join(f"{name} {value}" for name, value in counts.items()), highlight=False)
