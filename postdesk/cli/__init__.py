"""The `postdesk` command line: the root command and its verbs, one module per verb group.

Every command reads the same settings (`--data-dir` and `--config`, before or after the verb; the
environment; the TOML file). Errors are one readable line on stderr and a non-zero exit, never a
traceback: 2 for invalid settings, 1 for everything else. Each verb module imports only Typer when
loaded and the heavy parts (the database, the parser, the spam model) inside the commands that use
them, so `postdesk --help` starts at once (`bench/cli_startup.py` measures it).
"""

from __future__ import annotations

from typer.core import TyperGroup

from postdesk.cli import imap, import_mail, serve, settings, spam, spool, status, tickets
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


app = Verbs(cls=Root, help="Postdesk, a self-hosted email helpdesk.")


@app.callback()
def main() -> None:
    """Postdesk, a self-hosted email helpdesk."""


app.command()(serve.serve)
app.command()(status.status)
app.command("import")(import_mail.import_mail)
app.command("settings")(settings.show_settings)
app.add_typer(tickets.group, name="tickets")
app.add_typer(spool.group, name="spool")
app.add_typer(spam.group, name="spam")
app.add_typer(imap.group, name="imap")
