"""Restoring a backup into an empty data folder (and an empty database), without the erased.

In order, all before anything can run on the restored data:
1. the manifest is read and the target checked: the data folder empty (apart from the backup
   folder and the erasure ledger, when they live in it), the SQLite file absent or the PostgreSQL
   database without tables; the erasure ledger and its key present (unless told to go without);
2. every file is copied into a staging folder beside the data folder, its size and sha256 checked
   against the manifest on the way; the database is loaded (SQLite: the file; PostgreSQL:
   `pg_restore`, in one transaction) after its checksum is;
3. the schema is brought up to date, and the erasure ledger replayed in one transaction
   (`retention.ledger.replay`): everybody erased since the backup was taken is erased again, blob
   files and spam model versions included; spool entries holding mail the ledger names go;
4. the freed database pages are scrubbed (`retention.free_pages`), the restore goes in the audit trail;
5. the staging folder becomes the data folder (one rename when the folder is empty).
Any failure removes the staging folder and empties the database again: nothing half-restored is
left looking like a data folder.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url

from models.mail.parse import raw_sha256
from ingest.spool import Spool
from models.blobstore import BlobStore
from models.db import Database
from models.files import fsync_path
from retention.audit import record
from retention.backup import (
    DATA,
    Backup,
    BackupError,
    copy_hashed,
    hash_file,
    problem_with,
    read_backup,
    sync_filesystem,
)
from retention.backup_database import pg_empty_again, pg_is_empty, pg_restore
from retention.free_pages import free_pages
from retention.ledger import ErasureLedger, replay
from tickets.store import MessageStore

log = logging.getLogger("postdesk.backup")

DATABASE_NAME = "postdesk.db"


@dataclass
class Restored:
    backup: Backup
    data_dir: Path
    ledger_entries: int  # entries replayed (0 without a ledger)
    replayed: dict[str, int] = field(default_factory=dict)  # what the replay erased again
    spool_dropped: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "files": len(self.backup.files),
            "bytes": self.backup.size,
            "ledger_entries": self.ledger_entries,
            "spool_entries_dropped": self.spool_dropped,
            **{f"erased_again_{name}": value for name, value in self.replayed.items() if value},
        }


def restore_backup(
    path: Path, data_dir: Path, database_url: str, ledger: ErasureLedger | None, actor: str, keep: Iterable[Path] = ()
) -> Restored:
    """Restore the backup at `path` into the empty `data_dir` and the database `database_url`,
    replaying `ledger` (None: not replayed, the caller warned). `keep`: paths that may be in the data
    folder already (the backup folder, the ledger)."""
    backup = read_backup(path)
    data_dir = Path(data_dir).resolve()
    sqlite_target = _sqlite_target(database_url)
    _check_target(backup, data_dir, database_url, sqlite_target, keep)
    if ledger is not None:
        _check_ledger(ledger)
    staging = data_dir.parent / f".{data_dir.name}.restoring-{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    loaded_pg = False
    try:
        _copy_files(backup, staging)
        url = database_url
        if sqlite_target is not None:
            _copy_checked(backup, backup.database_file, staging / DATABASE_NAME)
            url = f"sqlite:///{staging / DATABASE_NAME}"
        db = Database(url)
        try:
            if sqlite_target is None:
                _check(backup, backup.database_file, *hash_file(backup.path / backup.database_file))
                loaded_pg = True
                pg_restore(db.engine, backup.path / backup.database_file)
            restored = _without_the_erased(db, backup, staging, ledger)
            with db.write() as session:
                record(
                    session,
                    actor,
                    "backup-restore",
                    "",
                    {
                        "backup": backup.path.name,
                        "backup_created_at": backup.created_at.isoformat(),
                        "database": backup.database,
                        "ledger": "replayed" if ledger else "not replayed (--without-ledger)",
                        "counts": restored.counts(),
                    },
                )
        finally:
            db.dispose()
        sync_filesystem(staging)
        _move_into_place(staging, data_dir, sqlite_target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if loaded_pg:
            _empty_database(database_url)
        raise
    restored.data_dir = data_dir
    log.info(
        "restored backup %s: %d files, ledger entries replayed %d",
        backup.path.name,
        len(backup.files),
        restored.ledger_entries,
    )
    return restored


def _sqlite_target(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("restore needs a database file or a PostgreSQL database, not an in-memory one")
    return Path(url.database.removeprefix("file:")).resolve()


def _check_target(
    backup: Backup, data_dir: Path, database_url: str, sqlite_target: Path | None, keep: Iterable[Path]
) -> None:
    kind = "sqlite" if sqlite_target is not None else "postgresql"
    if backup.database != kind:
        raise BackupError(
            f"this backup holds a {_NAMES[backup.database]} database and the settings name "
            f"{_NAMES[kind]} (POSTDESK_DATABASE_URL): restore it with the same kind of database"
        )
    allowed = set()
    for path in keep:
        try:
            allowed.add(Path(path).resolve().relative_to(data_dir).parts[0])
        except (ValueError, IndexError):
            pass
    if data_dir.exists():
        if not data_dir.is_dir():
            raise BackupError(f"{data_dir} is not a folder")
        found = sorted(p.name for p in data_dir.iterdir() if p.name not in allowed)
        if found:
            raise BackupError(
                f"the data folder {data_dir} is not empty ({', '.join(found[:5])}"
                f"{', ...' if len(found) > 5 else ''}): restore into a new or empty folder"
            )
    if sqlite_target is not None and sqlite_target.exists():
        raise BackupError(f"the database file {sqlite_target} exists already: restore into a new one")
    if sqlite_target is None:
        db = Database(database_url)
        try:
            if not pg_is_empty(db.engine):
                raise BackupError(
                    f"the database {db.engine.url.database} is not empty: restore into a new, empty "
                    "database (createdb NAME, then POSTDESK_DATABASE_URL naming it)"
                )
        finally:
            db.dispose()


_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _check_ledger(ledger: ErasureLedger) -> None:
    if not ledger.path.is_file():
        raise BackupError(
            f"there is no erasure ledger at {ledger.path}: name the live one with --ledger (or "
            "POSTDESK_ERASURE_LEDGER); only if nobody was ever erased, restore with --without-ledger"
        )
    if not ledger.key_path.is_file():
        raise BackupError(
            f"the erasure ledger's key {ledger.key_path} is missing: without it the ledger's hashes "
            "cannot be matched; put it back beside the ledger"
        )


def _copy_files(backup: Backup, staging: Path) -> None:
    prefix = f"{DATA}/"
    for name in sorted(n for n in backup.files if n.startswith(prefix)):
        target = staging / name[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_checked(backup, name, target)


def _copy_checked(backup: Backup, name: str, target: Path) -> None:
    try:
        size, digest = copy_hashed(backup.path / name, target)
    except FileNotFoundError:
        raise BackupError(f"backup {backup.path} is damaged: {name} is missing; nothing was restored") from None
    _check(backup, name, size, digest)


def _check(backup: Backup, name: str, size: int, digest: str) -> None:
    problem = problem_with(backup, name, size, digest)
    if problem:
        raise BackupError(f"backup {backup.path} is damaged: {problem}; nothing was restored")


def _without_the_erased(db: Database, backup: Backup, staging: Path, ledger: ErasureLedger | None) -> Restored:
    """The schema brought up to date, then everybody the ledger erased erased again."""
    if not db.schema_is_current():  # a migration on SQLite ends with a foreign key check of every row
        db.migrate()
    restored = Restored(backup, staging, 0)
    if ledger is None:
        return restored
    restored.ledger_entries = sum(1 for _ in ledger.entries())
    store = MessageStore(BlobStore(staging / "blobs"), spam_dir=staging / "spam")
    with db.write() as session:
        restored.replayed = replay(ledger, store, session)
    spool = Spool(staging / "spool")
    restored.spool_dropped = spool.purge(
        lambda entry: bool(ledger.among([raw_sha256(entry.raw)])), lambda _entries: None, held_for=0
    )
    free_pages(db)
    return restored


def _move_into_place(staging: Path, data_dir: Path, sqlite_target: Path | None) -> None:
    """The staging folder becomes the data folder: one rename if the folder is empty or missing;
    else its parts moved in, the database last (a folder without its database is no data folder)."""
    if not data_dir.exists() or not any(data_dir.iterdir()):
        os.rename(staging, data_dir)
    else:
        for part in sorted(staging.iterdir(), key=lambda p: p.name.startswith(DATABASE_NAME)):
            os.rename(part, data_dir / part.name)
        staging.rmdir()
    fsync_path(data_dir)
    fsync_path(data_dir.parent)
    if sqlite_target is not None and sqlite_target != data_dir / DATABASE_NAME:
        shutil.move(data_dir / DATABASE_NAME, sqlite_target)


def _empty_database(database_url: str) -> None:
    db = Database(database_url)
    try:
        pg_empty_again(db.engine)
    except Exception:  # the restore's own error is the one to report
        log.exception("could not empty the database again after a failed restore")
    finally:
        db.dispose()
