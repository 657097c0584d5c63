"""Opening the data folder for a command: reading never creates or changes it, writing says when it creates it.

A reading command (`tickets list`, `status`, `spam score`, ...) needs an existing data folder and,
with SQLite, its database, which it opens read-only (SQLite's `mode=ro`): a mistyped `--data-dir`
is reported instead of becoming a new empty folder, and a folder the user may only read still
answers. `serve` and the commands that bring mail or labels in create the folder, say so, and
bring the schema up to date. A disk or database that refuses is one line, not a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import typer

from postdesk.cli.common import err, fail, settings_of

if TYPE_CHECKING:
    from models.settings import Settings
    from postdesk.app import App

# What the machine, not Postdesk, refused: reported in one line.
_REFUSALS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO}


def open_for_reading(ctx: typer.Context) -> App:
    """The app on an existing data folder and database, the SQLite database opened read-only."""
    from postdesk.app import App

    settings = settings_of(ctx)
    require_data_folder(settings)
    database = sqlite_file(settings)
    if database is not None and not database.is_file():
        fail(f"there is no Postdesk database at {database} (`postdesk serve` creates it)")
    url = settings.sqlalchemy_url if database is None else _read_only_url(database)
    app = App.open(settings.model_copy(update={"database_url": url}), migrate=False)
    app.settings = settings  # only the database connection differs from the settings as given
    return app


def open_for_writing(ctx: typer.Context, *, create: bool) -> App:
    """The app with the schema brought up to date. With `create` (the commands that bring mail or
    labels in) a missing data folder is made, saying so; without, it must exist."""
    from postdesk.app import App

    settings = settings_of(ctx)
    writable_data_folder(settings, create=create)
    return App.open(settings)


def require_data_folder(settings: Settings) -> None:
    folder = settings.data_dir
    if not folder.is_dir():
        fail(
            f"there is no data folder at {folder.resolve()} (check --data-dir or POSTDESK_DATA_DIR; "
            "`postdesk serve` creates one)"
        )


def writable_data_folder(settings: Settings, *, create: bool) -> None:
    """Refuse a data folder this user cannot write to; with `create`, make a missing one and say so."""
    folder = settings.data_dir.resolve()
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            fail(f"cannot write to the data folder {folder} (a read-only disk, or no write permission for this user)")
        return
    if not create:
        require_data_folder(settings)
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        fail(f"cannot create the data folder {folder}: {exc.strerror}")
    err.print(f"Created the data folder {folder}", highlight=False, soft_wrap=True)


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file, or None for another database."""
    from sqlalchemy import make_url

    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database.removeprefix("file:")).resolve()


def _read_only_url(database: Path) -> str:
    """SQLite read-only. Reading a WAL database needs its -shm file, made by a writer or by any
    reader that may write the folder. In a folder this user cannot write, with no -wal or -shm
    left (no writer has it open), the file is read as immutable, without locks: right for a
    read-only disk or a copy; only a writer of another user starting during this one command
    could go unseen by it."""
    query = "mode=ro&uri=true"
    if not os.access(database.parent, os.W_OK) and not any(
        database.with_name(database.name + suffix).exists() for suffix in ("-wal", "-shm")
    ):
        query += "&immutable=1"
    return f"sqlite:///file:{quote(str(database))}?{query}"


def environment_problem(exc: BaseException) -> str | None:
    """One line for an error the machine or the database caused (a read-only disk, a database that
    is down or locked), or None for anything else, which is a bug and keeps its traceback."""
    if isinstance(exc, OSError) and exc.errno in _REFUSALS:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc.strerror)
    database_errors = sys.modules.get("sqlalchemy.exc")
    if database_errors is not None and isinstance(exc, database_errors.OperationalError):
        reason = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        return f"the database refused: {reason[0]}"
    return None
