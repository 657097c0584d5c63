"""`postdesk backup …`: make, list, check and restore backups (`retention.backup`, `retention.restore`).

    postdesk backup create [PATH] [--json]         default PATH: BACKUP_DIR/postdesk-<UTC time>
    postdesk backup list [--json]                  the backups in BACKUP_DIR
    postdesk backup verify PATH                    every file against the manifest's sha256
    postdesk backup restore PATH [--ledger FILE | --without-ledger]   into an empty data folder

A restore replays the erasure ledger before anything runs on the restored data; it refuses to go
on without one unless told `--without-ledger` (then everybody erased since the backup is back).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, UTC
from pathlib import Path

import typer

from postdesk.cli.common import Verbs, err, fail, out, settings_of
from postdesk.cli.workspace import open_for_writing

group = Verbs(help="Backups of the database and the data folder, checked, and restored without the erased.")

ActorOption = typer.Option(None, "--actor", help="Who does this, for the audit trail (default: the OS user).")
JsonOption = typer.Option(False, "--json", help="Print JSON.")


@group.command()
def create(
    ctx: typer.Context,
    path: Path | None = typer.Argument(None, help="The new backup folder (default: BACKUP_DIR/postdesk-<UTC time>)."),
    actor: str | None = ActorOption,
    as_json: bool = JsonOption,
):
    """A consistent backup of the database, the attachment files, the spam model and the spool."""
    from retention.audit import os_user, record
    from retention.backup import BackupError, create_backup, default_name
    from retention.backup_database import DatabaseCopyError

    app = open_for_writing(ctx, create=False)
    target = path or app.settings.backup_folder / default_name(datetime.now(UTC))
    try:
        backup = create_backup(app.db, app.settings.data_dir, target, app.settings.sqlite_busy_timeout)
    except (BackupError, DatabaseCopyError) as exc:
        fail(str(exc))
    with app.db.write() as session:
        record(
            session,
            actor or os_user(),
            "backup-create",
            "",
            {
                "backup": backup.path.name,
                "database": backup.database,
                "files": len(backup.files),
                "bytes": backup.size,
                "counts": backup.counts,
            },
        )
    app.db.dispose()
    if as_json:
        out.print_json(json.dumps(backup.summary()))
        return
    counts = backup.counts
    out.print(
        f"wrote {backup.path}: {backup.database} database, {counts['blob_files']} attachment files, "
        f"{counts['spam_files']} spam model files, {counts['spool_files']} spool files, "
        f"{len(backup.files)} files, {backup.size:,} bytes",
        highlight=False,
    )


@group.command("list")
def list_(ctx: typer.Context, as_json: bool = JsonOption):
    """The backups in BACKUP_DIR, oldest first (from their manifests; `verify` checks the files)."""
    from retention.backup import Backup, list_backups

    folder = settings_of(ctx).backup_folder
    found = list_backups(folder)
    if as_json:
        out.print_json(json.dumps([b.summary() if isinstance(b, Backup) else {"error": str(b)} for b in found]))
        return
    if not found:
        out.print(f"no backups in {folder}", highlight=False)
    for backup in found:
        if isinstance(backup, Backup):
            out.print(
                f"{backup.path.name}  {backup.created_at:%Y-%m-%d %H:%M:%S} UTC  {backup.database:<10}  "
                f"{len(backup.files):>7} files  {backup.size / 2**20:>10.1f} MiB",
                highlight=False,
            )
        else:
            out.print(f"unreadable: {backup}", highlight=False)


@group.command()
def verify(ctx: typer.Context, path: Path = typer.Argument(..., help="The backup folder.")):
    """Check every file of a backup against the sha256 in its manifest; exit 1 naming the first bad one."""
    from retention.backup import BackupError, verify_backup

    try:
        backup = verify_backup(path)
    except BackupError as exc:
        fail(str(exc))
    out.print(
        f"{backup.path}: all {len(backup.files)} files match the manifest ({backup.size:,} bytes)", highlight=False
    )


@group.command()
def restore(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="The backup folder."),
    ledger: Path | None = typer.Option(
        None, "--ledger", help="The live erasure ledger to replay (default: POSTDESK_ERASURE_LEDGER)."
    ),
    without_ledger: bool = typer.Option(
        False,
        "--without-ledger",
        help="Restore without replaying any erasure: everybody erased since the backup comes back.",
    ),
    actor: str | None = ActorOption,
    as_json: bool = JsonOption,
):
    """Restore a backup into an empty data folder (and empty database), replaying the erasure ledger first."""
    from postdesk.app import configure_logging
    from retention.audit import os_user
    from retention.backup import BackupError
    from retention.backup_database import DatabaseCopyError
    from retention.ledger import ErasureLedger
    from retention.restore import restore_backup

    settings = settings_of(ctx)
    configure_logging(settings)
    if ledger and without_ledger:
        fail("give --ledger or --without-ledger, not both")
    ledger_path = ledger or settings.erasure_ledger_path
    if without_ledger:
        err.print(
            "[yellow]warning:[/yellow] restoring without the erasure ledger: everybody erased since this "
            "backup was taken is back in the restored data",
            highlight=False,
        )
    try:
        restored = restore_backup(
            path,
            settings.data_dir,
            settings.sqlalchemy_url,
            None if without_ledger else ErasureLedger(ledger_path),
            actor or os_user(),
            keep=[settings.backup_folder, ledger_path, ledger_path.with_suffix(".key")],
        )
    except (BackupError, DatabaseCopyError) as exc:
        fail(str(exc))
    if not without_ledger:
        _adopt_ledger(ledger_path, settings.erasure_ledger_path)
    if as_json:
        out.print_json(json.dumps({"data_dir": str(restored.data_dir), **restored.counts()}))
        return
    counts = restored.counts()
    out.print(
        f"restored {restored.backup.path.name} ({restored.backup.created_at:%Y-%m-%d %H:%M:%S} UTC) into "
        f"{restored.data_dir}: {counts['files']} files, {counts['bytes']:,} bytes; erasure ledger: "
        f"{counts['ledger_entries']} entries replayed, "
        f"{counts.get('erased_again_messages', 0)} messages erased again, "
        f"{counts['spool_entries_dropped']} spool entries dropped",
        highlight=False,
    )


def _adopt_ledger(replayed: Path, own: Path) -> None:
    """The restored folder's own ledger (POSTDESK_ERASURE_LEDGER or its default) starts as the one
    replayed, so the pipeline drops erased mail fetched again and later erasures add to it."""
    if replayed.resolve() == own.resolve():
        return
    if own.exists():
        err.print(
            f"[yellow]note:[/yellow] this data folder's erasure ledger is {own}, not the {replayed} "
            "just replayed: keep one ledger (POSTDESK_ERASURE_LEDGER)",
            highlight=False,
        )
        return
    own.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(replayed.with_suffix(".key"), own.with_suffix(".key"))
    shutil.copy2(replayed, own)
    err.print(
        f"note: the erasure ledger {replayed} was copied to {own}, this data folder's own "
        "(POSTDESK_ERASURE_LEDGER); keep it on other storage than the database",
        highlight=False,
    )
