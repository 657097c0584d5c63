"""Backups: a consistent copy of the database and of the files it needs, with sha256 checksums.

A backup is a folder:

    manifest.json           what it is (format, time, database kind, counts) and every file's size and sha256
    database.sqlite3        SQLite's online backup of the database, or
    database.pgdump         pg_dump's custom format (`retention.backup_database`)
    data/blobs/ab/<sha256>  the attachment files the database counts
    data/spam/<version>.*   the spam model versions the database names
    data/spool/{new,cur,bad}/  mail accepted (250) and not yet stored: the only copy of it
    data/imap/<account>.json   how far each IMAP account was fetched (a restore fetches what came after)
    data/secret.key         the server secret our Message-IDs are signed with (when generated)

Never in it: the erasure ledger and its key (a restore replays them, so they must outlive every
backup), spool/tmp (puts never acknowledged), half-written blob files, other backups.

Consistency while `serve` runs: the spool is copied first, then the database snapshot is taken,
then exactly the blob and spam files that snapshot refers to. Mail in both the spool copy and the
snapshot is stored once on restore (the pipeline's dedupe); mail that left the spool before the
snapshot is in it. A file the snapshot refers to that is gone when copied was released by a
later commit (an erasure, a purge): the snapshot is taken again, up to `ATTEMPTS` times.

The backup is written as `.<name>.partial` and renamed into place after its manifest and every file
are on disk, so a folder with a manifest is always a whole backup.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from pathlib import Path

from models.db import Database
from models.files import fsync_path
from retention.backup_database import PG_DUMP_FILE, SQLITE_FILE, Needs, pg_snapshot, sqlite_snapshot

MANIFEST = "manifest.json"
FORMAT = "postdesk-backup"
VERSION = 1
DATA = "data"  # the data folder's files, under their own names
PARTIAL_MARK = ".postdesk-backup-partial"
ATTEMPTS = 3
_CHUNK = 1 << 20
_THREADS = 4  # copies in flight: hashing lets go of the GIL, and the disk overlaps their reads
SPOOL_FOLDERS = ("new", "cur", "bad")


class BackupError(Exception):
    """A backup cannot be made, read or trusted; the message names the file and says why."""


@dataclass
class Backup:
    """A finished backup, as its manifest describes it."""

    path: Path
    created_at: datetime
    database: str  # "sqlite" or "postgresql"
    files: dict[str, list]  # relative path → [size, sha256]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.files.values())

    @property
    def database_file(self) -> str:
        return SQLITE_FILE if self.database == "sqlite" else PG_DUMP_FILE

    def summary(self) -> dict:
        return {
            "path": str(self.path),
            "created_at": self.created_at.isoformat(),
            "database": self.database,
            "files": len(self.files),
            "bytes": self.size,
            "counts": self.counts,
        }


# --- making one ------------------------------------------------------------------------------------


def default_name(now: datetime) -> str:
    utc = now.astimezone(UTC)
    return f"postdesk-{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z"


def create_backup(db: Database, data_dir: Path, target: Path, busy_timeout: float = 30.0) -> Backup:
    """Write a backup of the database `db` and the data folder `data_dir` to the new folder `target`."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} exists already: give a new name (or no name, for one made of the time)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    (partial / PARTIAL_MARK).touch()
    try:
        backup = _write(db, Path(data_dir), partial, busy_timeout)
        (partial / PARTIAL_MARK).unlink()
        sync_filesystem(partial)
        os.rename(partial, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    backup.path = target
    return backup


def _write(db: Database, data_dir: Path, out: Path, busy_timeout: float) -> Backup:
    copier = _Copier(out)
    spool = copier.copy_all(_spool_files(data_dir), data_dir)  # before the snapshot: see the module docstring
    for attempt in range(ATTEMPTS):
        taken = datetime.now(UTC)
        database, needs = _snapshot(db, out, busy_timeout)
        try:
            blobs = copier.copy_all(_blob_files(data_dir, needs), data_dir, required=True)
            spam = copier.copy_all(_spam_files(data_dir, needs), data_dir, required=True)
            break
        except FileNotFoundError:
            if attempt == ATTEMPTS - 1:
                raise BackupError(
                    "files the database refers to kept disappearing while the backup ran "
                    "(erasures or purges under way): try again"
                ) from None
            copier.forget(f"{DATA}/blobs/", f"{DATA}/spam/")
    others = copier.copy_all(_other_files(data_dir), data_dir)
    database_file = SQLITE_FILE if db.is_sqlite else PG_DUMP_FILE
    copier.add(database_file, *hash_file(out / database_file))
    backup = Backup(
        out,
        taken,
        database,
        copier.files,
        {"blob_files": blobs, "spam_files": spam, "spool_files": spool, "other_files": others},
    )
    _write_manifest(out, backup)
    return backup


def _snapshot(db: Database, out: Path, busy_timeout: float) -> tuple[str, Needs]:
    if db.is_sqlite:
        (out / SQLITE_FILE).unlink(missing_ok=True)
        return "sqlite", sqlite_snapshot(Path(db.engine.url.database or ""), out / SQLITE_FILE, busy_timeout)
    (out / PG_DUMP_FILE).unlink(missing_ok=True)
    return "postgresql", pg_snapshot(db.engine, out / PG_DUMP_FILE)


def _spool_files(data_dir: Path) -> Iterable[Path]:
    for folder in SPOOL_FOLDERS:
        root = data_dir / "spool" / folder
        if root.is_dir():
            yield from (p for p in sorted(root.iterdir()) if p.is_file())


def _blob_files(data_dir: Path, needs: Needs) -> Iterable[Path]:
    return (data_dir / "blobs" / sha256[:2] / sha256 for sha256 in sorted(needs.blobs))


def _spam_files(data_dir: Path, needs: Needs) -> Iterable[Path]:
    return (data_dir / "spam" / f"{stem}{suffix}" for stem in sorted(needs.spam_stems) for suffix in (".npz", ".json"))


def _other_files(data_dir: Path) -> Iterable[Path]:
    if (data_dir / "secret.key").is_file():
        yield data_dir / "secret.key"
    if (data_dir / "imap").is_dir():
        yield from sorted(p for p in (data_dir / "imap").iterdir() if p.is_file() and p.suffix == ".json")


class _Copier:
    """Copies files into the backup under `data/`, hashing them on the way, several at once."""

    def __init__(self, out: Path):
        self.out = out
        self.files: dict[str, list] = {}

    def copy_all(self, paths: Iterable[Path], data_dir: Path, required: bool = False) -> int:
        """How many were copied; a file gone meanwhile is skipped, or with `required` raises FileNotFoundError."""
        jobs = [(path, f"{DATA}/{path.relative_to(data_dir).as_posix()}") for path in paths]
        with ThreadPoolExecutor(_THREADS) as pool:
            done = list(pool.map(lambda job: self._copy(job[0], job[1], required), jobs))
        return sum(done)

    def _copy(self, source: Path, name: str, required: bool) -> bool:
        target = self.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            size, digest = copy_hashed(source, target)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            if required:
                raise
            if source.parent.name == "new" and source.parent.parent.name == "spool":
                # a runner claimed it meanwhile: it is in cur/ until its batch commits (after which
                # the snapshot, taken later, holds it)
                return self._copy(source.parent.parent / "cur" / source.name, name.replace("/new/", "/cur/"), False)
            return False
        self.add(name, size, digest)
        return True

    def add(self, name: str, size: int, digest: str) -> None:
        self.files[name] = [size, digest]

    def forget(self, *prefixes: str) -> None:
        """Drop what was copied under these prefixes (a snapshot taken again needs other files)."""
        for name in [n for n in self.files if n.startswith(prefixes)]:
            (self.out / name).unlink(missing_ok=True)
            del self.files[name]


def copy_hashed(source: Path, target: Path) -> tuple[int, str]:
    """Copy `source` to the new file `target`; its size and sha256."""
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _write_manifest(out: Path, backup: Backup) -> None:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": backup.created_at.isoformat(),
        "database": backup.database,
        "counts": backup.counts,
        "files": backup.files,
    }
    with open(out / MANIFEST, "x") as fh:
        json.dump(manifest, fh, indent=0, sort_keys=True)


def sync_filesystem(folder: Path) -> None:
    """Every file written is on disk: one syncfs(2) of the backup's filesystem, which costs far less
    than an fsync per file (thousands of small blob files)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


# --- reading and checking --------------------------------------------------------------------------


def read_backup(path: Path) -> Backup:
    """The backup at `path`, from its manifest (not yet checked against its files: `verify_backup`)."""
    path = Path(path)
    if not path.is_dir():
        raise BackupError(f"{path}: no such backup folder")
    if (path / PARTIAL_MARK).exists() or path.name.endswith(".partial"):
        raise BackupError(f"{path} is a backup that was never finished: delete it")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{path} has no {MANIFEST}: not a finished Postdesk backup, nothing in it can be checked"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{path / MANIFEST} is damaged (not valid JSON): the backup cannot be checked") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path / MANIFEST} is not a Postdesk backup manifest")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"{path} is a backup of format version {manifest.get('version')}; this Postdesk reads version {VERSION}"
        )
    try:
        backup = Backup(
            path,
            datetime.fromisoformat(manifest["created_at"]),
            manifest["database"],
            {str(n): [int(s), str(d)] for n, (s, d) in manifest["files"].items()},
            dict(manifest.get("counts", {})),
        )
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{path / MANIFEST} is damaged (fields missing or malformed)") from None
    if backup.database not in ("sqlite", "postgresql") or backup.database_file not in backup.files:
        raise BackupError(f"{path / MANIFEST} names no database file")
    if any(n.startswith("/") or ".." in Path(n).parts for n in backup.files):
        raise BackupError(f"{path / MANIFEST} names a file outside the backup")
    return backup


def problem_with(backup: Backup, name: str, size: int, digest: str) -> str | None:
    """What is wrong with one file of the backup, given its size and sha256 as found, or None."""
    expected_size, expected = backup.files[name]
    if size != expected_size:
        how = "truncated" if size < expected_size else "longer than it was"
        return f"{name} is damaged: {how} ({size:,} bytes, the manifest says {expected_size:,})"
    if digest != expected:
        return f"{name} is damaged: its sha256 differs from the manifest's"
    return None


def verify_backup(path: Path) -> Backup:
    """The backup at `path` with every file checked against the manifest; BackupError names the first bad file."""
    backup = read_backup(path)

    def check(name: str) -> str | None:
        try:
            return problem_with(backup, name, *hash_file(backup.path / name))
        except FileNotFoundError:
            return f"{name} is missing"

    with ThreadPoolExecutor(_THREADS) as pool:
        problems = [p for p in pool.map(check, sorted(backup.files)) if p]
    if problems:
        more = f" (and {len(problems) - 1} more damaged or missing files)" if len(problems) > 1 else ""
        raise BackupError(f"backup {backup.path} is damaged: {problems[0]}{more}")
    return backup


def list_backups(folder: Path) -> list[Backup | BackupError]:
    """The backups in `folder`, oldest first; one that cannot be read is listed as its error."""
    folder = Path(folder)
    found: list[Backup | BackupError] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_dir() and not path.name.startswith("."):
            try:
                found.append(read_backup(path))
            except BackupError as exc:
                found.append(exc)
    return sorted(found, key=lambda b: (b.created_at.isoformat() if isinstance(b, Backup) else "", str(b)))


# --- growing old -----------------------------------------------------------------------------------


def expire_backups(settings, now: datetime) -> int:
    """Delete the backups in `settings.backup_folder` made more than `settings.backup_keep_days`
    days before `now` (0: none), and unfinished ones left that long ago; how many backups went."""
    if settings.backup_keep_days <= 0:
        return 0
    now = now if now.tzinfo else now.replace(tzinfo=UTC)  # a naive time is UTC, as the scheduler's
    cutoff = now - timedelta(days=settings.backup_keep_days)
    folder = Path(settings.backup_folder)
    removed = 0
    for backup in list_backups(folder):
        if isinstance(backup, Backup) and backup.created_at < cutoff:
            shutil.rmtree(backup.path)
            removed += 1
    for partial in folder.glob(".*.partial") if folder.is_dir() else ():
        if (partial / PARTIAL_MARK).exists() and partial.stat().st_mtime < cutoff.timestamp():
            shutil.rmtree(partial, ignore_errors=True)
    return removed
