"""`python -m postdesk` is the `postdesk` command."""

from postdesk.cli import app

app()
