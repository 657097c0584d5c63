"""What every command shares: the two consoles, one-line errors, and opening the app from the settings."""

from __future__ import annotations

import typer
from rich.console import Console

from postdesk.app import App
from postdesk.settings import Settings, SettingsError, load_settings

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print one readable error line and exit non-zero (never a traceback)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_of(ctx: typer.Context) -> Settings:
    try:
        return load_settings(**(ctx.find_root().obj or {}) | (ctx.obj or {}))
    except SettingsError as exc:
        fail(str(exc), 2)


def open_app(ctx: typer.Context, migrate: bool = True) -> App:
    settings = settings_of(ctx)
    try:
        return App.open(settings, migrate=migrate)
    except Exception as exc:  # a CLI user gets one line, not a traceback
        fail(f"cannot open the database ({type(exc).__name__}): {exc}".splitlines()[0])
