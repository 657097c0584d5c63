"""`postdesk web`: the agents' web view alone (no SMTP, no runner); and the lines `serve` prints about it."""

from __future__ import annotations

import signal
import threading

from typing import TYPE_CHECKING

import typer

from postdesk.cli.common import fail, out
from postdesk.cli.workspace import open_for_writing

if TYPE_CHECKING:
    from postdesk.app import App


def ready_lines(app: App, url: str) -> list[str]:
    """Where the web view is, and how to make the first owner when nobody can sign in yet."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    from models import Agent

    make_owner = "   .venv/bin/postdesk users create you@example.com --role owner"
    try:
        with app.db.read() as session:
            nobody = not session.scalar(select(func.count()).select_from(Agent))
    except DBAPIError:  # serve starts before its database answers or is migrated (a fresh install)
        return [
            f"Web view: {url}",
            "If nobody can sign in yet, make the first owner (it prints a one-time password):",
            make_owner,
        ]
    if nobody:
        return [
            f"Web view: {url}",
            "Nobody can sign in yet. Make the first owner (it prints a one-time password):",
            make_owner,
        ]
    return [f"Web view: {url}"]


def web(ctx: typer.Context):
    """Serve only the agents' web view, until Ctrl-C or SIGTERM."""
    from postdesk.app import configure_logging
    from postdesk.web.server import WebServer

    app = open_for_writing(ctx, create=False)
    configure_logging(app.settings)
    server = WebServer(app.settings, app.db)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        url = server.start()
    except OSError as exc:
        fail(str(exc))
    for line in ready_lines(app, url):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        app.db.dispose()
