"""`postdesk imap status` and `postdesk imap test ACCOUNT`.

`imap_status(settings)` and `imap_test(settings, name)` are plain functions; `group` is the Typer
group calling them (it takes ready Settings as `obj`, as the tests hand them in).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from postdesk.cli.common import Verbs, settings_of
from postdesk.cli.workspace import require_data_folder

if TYPE_CHECKING:
    from models.settings import ImapAccount, Settings


def imap_status(settings: Settings) -> list[dict[str, Any]]:
    """One row per account and folder, from the status files the pollers write."""
    from ingest.imap.state import load_state

    rows = []
    for account in settings.imap_accounts:
        state = load_state(settings.data_dir, account.name)
        for folder in account.folders:
            fs = state.folders.get(folder)
            rows.append(
                {
                    "account": account.name,
                    "folder": folder,
                    "last_sync": fs.last_sync if fs else None,
                    "last_error": state.error or (fs.last_error if fs else None),
                    "error_at": state.error_at,
                    "imported": fs.imported if fs else 0,
                    "skipped": list(fs.skipped) if fs else [],
                    "last_uid": fs.last_uid if fs else None,
                    "uidvalidity": fs.uidvalidity if fs else None,
                    "pending_clean_up": len(fs.pending) if fs else 0,
                }
            )
    return rows


def imap_test(settings: Settings, account_name: str) -> tuple[bool, list[str]]:
    """Connect, log in and look at the folders; says plainly what is wrong."""
    from ingest.imap.connect import NETWORK_ERRORS, ImapConnectError, close, connect, describe

    account = next((a for a in settings.imap_accounts if a.name == account_name), None)
    if account is None:
        names = ", ".join(a.name for a in settings.imap_accounts) or "none"
        return False, [f"no IMAP account named {account_name!r} (configured: {names})"]
    lines = [f"connecting to {account.host}:{account.server_port} ({account.tls})"]
    try:
        client = connect(account)
    except ImapConnectError as exc:
        return False, lines + [f"FAILED: {exc}"]
    lines.append("connected and logged in")
    try:
        ok, found = _check_folders(client, account)
    except NETWORK_ERRORS as exc:
        return False, lines + [f"FAILED: {describe(exc, account)}"]
    finally:
        close(client)
    return ok, lines + found


def _check_folders(client, account: ImapAccount) -> tuple[bool, list[str]]:
    names = [name for _flags, _sep, name in client.list_folders()]
    lines = [f"server folders: {', '.join(names)}"]
    missing = [f for f in account.folders if f not in names]
    for folder in account.folders:
        if folder in missing:
            lines.append(f"FAILED: folder {folder!r} does not exist on the server")
        else:
            status = client.folder_status(folder, ["MESSAGES", "UIDNEXT"])
            lines.append(f"folder {folder!r}: {status[b'MESSAGES']} messages, next UID {status[b'UIDNEXT']}")
    lines += _capability_notes(client, account, names)
    return not missing, lines


def _capability_notes(client, account: ImapAccount, names: list[str]) -> list[str]:
    idle = "yes" if client.has_capability("IDLE") else f"no, polling every {account.poll_interval:g}s"
    notes = [f"IDLE: {idle}"]
    if account.after_import != "keep" and not client.has_capability("UIDPLUS"):
        notes.append("note: no UIDPLUS, so imported mail is flagged \\Deleted but never expunged")
    if account.after_import == "move" and account.move_to not in names:
        notes.append(f"note: move_to folder {account.move_to!r} will be created")
    return notes


group = Verbs(help="IMAP accounts: sync state and configuration checks.")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


@group.command("status")
def status_command(ctx: typer.Context) -> None:
    """Each account and folder: last sync, last error, messages imported, UIDs skipped."""
    settings = settings_of(ctx)
    require_data_folder(settings)
    rows = imap_status(settings)
    if not rows:
        typer.echo("no IMAP accounts configured")
    for row in rows:
        typer.echo(
            f"{row['account']}/{row['folder']}: last sync {_when(row['last_sync'])}, "
            f"{row['imported']} imported, {len(row['skipped'])} skipped"
        )
        if row["last_error"]:
            typer.echo(f"  last error: {row['last_error']}")
        for skip in row["skipped"][-5:]:
            typer.echo(f"  skipped UID {skip['uid']}: {skip['reason']}")


@group.command("test")
def test_command(ctx: typer.Context, account: str = typer.Argument(..., help="Account name")) -> None:
    """Connect, log in and list the folders; exits non-zero saying what is wrong."""
    ok, lines = imap_test(settings_of(ctx), account)
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if ok else 1)
