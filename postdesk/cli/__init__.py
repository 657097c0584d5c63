"""The `postdesk` command line: the root command and its verbs, one module per verb group.

Every command reads the same settings (`--data-dir` and `--config`, before or after the verb; the
environment; the TOML file). Errors are one readable line on stderr and a non-zero exit, never a
traceback: 2 for invalid settings, 1 for everything else. Each verb module imports only Typer when
loaded and the heavy parts (the database, the parser, the spam model) inside the commands that use
them, so `postdesk --help` starts at once (`bench/cli_startup.py` measures it).
"""

from __future__ import annotations

import gc
import os
from typing import Any

from typer.core import TyperGroup

from postdesk.cli import (
    backup,
    blobs,
    hold,
    imap,
    import_mail,
    outbox,
    privacy,
    retention,
    search,
    serve,
    settings,
    spam,
    spool,
    status,
    ticket_work,  # noqa: F401 (it adds its verbs to the tickets group)
    tickets,
    users,
    web,  # noqa: F401 (ticket_work adds its verbs to the tickets group)
)
from postdesk.cli.common import Verbs, fail
from postdesk.cli.workspace import environment_problem


class Root(TyperGroup):
    """The root group: an error the machine or the database caused (a read-only disk, a database
    that is down) ends the command with one line; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            problem = environment_problem(exc)
            if problem is None:
                raise
            fail(problem)


class Postdesk(Verbs):
    """The `postdesk` command as the shell runs it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Postdesk does no linear algebra; numpy's and scipy's OpenBLAS would each start a thread
        # pool per core at import (its cost: bench/results/cli_startup.md).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            return super().__call__(*args, **kwargs)
        finally:
            # The process ends here: spare the interpreter's last full collections over everything
            # the command loaded (its cost: bench/results/cli_startup.md).
            gc.freeze()


app = Postdesk(cls=Root, help="Postdesk, a self-hosted email helpdesk.")


@app.callback()
def main() -> None:
    """Postdesk, a self-hosted email helpdesk."""


app.command()(serve.serve)
app.command()(status.status)
app.command("import")(import_mail.import_mail)
app.command("settings")(settings.show_settings)
app.add_typer(tickets.group, name="tickets")  # with its work verbs, from ticket_work
app.add_typer(spool.group, name="spool")
app.add_typer(spam.group, name="spam")
app.add_typer(imap.group, name="imap")
app.add_typer(users.group, name="users")
app.command("web")(web.web)
app.command("search")(search.search)
app.add_typer(blobs.group, name="blobs")
app.add_typer(privacy.group, name="privacy")
app.add_typer(backup.group, name="backup")
app.add_typer(hold.group, name="hold")
app.add_typer(retention.group, name="retention")
app.add_typer(outbox.group, name="outbox")
