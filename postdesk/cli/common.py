"""What every command shares: the two consoles, one-line errors, the settings, and `--data-dir`/`--config`.

`Verbs` is the Typer every verb group is made with: each of its commands (and its callback) takes
`--data-dir` and `--config`, so they work before the verb and after it alike; the value given
nearest the command wins. Nothing heavy is imported here: `postdesk --help` loads only this.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from models.settings import Settings

out = Console(soft_wrap=True)  # a line stays one line when piped (grep, scripts)
err = Console(stderr=True, soft_wrap=True)

_KEYS = {"data_dir": "postdesk.data_dir", "config": "postdesk.config"}  # where the options are kept in ctx.meta
_OPTIONS = (
    inspect.Parameter(
        "data_dir",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Path | None,
        default=typer.Option(None, "--data-dir", show_default=False, help="Data folder (overrides POSTDESK_DATA_DIR)."),
    ),
    inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Path | None,
        default=typer.Option(
            None, "--config", show_default=False, help="TOML settings file (overrides POSTDESK_CONFIG)."
        ),
    ),
)
_CTX = "postdesk_ctx"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one readable error line and exit non-zero (never a traceback)."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def fail_all(problems: list[str], code: int = 2) -> NoReturn:
    """One error line per problem (invalid settings: exit 2)."""
    for line in problems[:-1]:
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    fail(problems[-1], code)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (what, done, total) drawing one bar per `what` on stderr while the block runs."""
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield progress


def takes_data_options(func: Callable) -> Callable:
    """`func` as a command that also takes `--data-dir` and `--config`, kept in `ctx.meta` for `settings_of`."""
    signature = inspect.signature(func, eval_str=True)
    params = list(signature.parameters.values())
    ctx_name = next((p.name for p in params if p.annotation is typer.Context), None)
    if ctx_name is None:
        params.insert(0, inspect.Parameter(_CTX, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context))

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs[ctx_name] if ctx_name else kwargs.pop(_CTX)
        for name, key in _KEYS.items():
            value = kwargs.pop(name)
            if value is not None:
                ctx.meta[key] = value
        return func(*args, **kwargs)

    with_options = signature.replace(parameters=params + list(_OPTIONS))
    command.__signature__ = with_options  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in with_options.parameters.values()}
    return command


class Verbs(typer.Typer):
    """A Typer whose commands and callback all take `--data-dir` and `--config`."""

    def __init__(self, **kwargs: Any):
        super().__init__(no_args_is_help=True, add_completion=False, **kwargs)
        self.callback()(_group)  # so `postdesk tickets --data-dir X list` works too

    def command(self, *args: Any, **kwargs: Any) -> Callable:
        return _with_data_options(super().command(*args, **kwargs))

    def callback(self, *args: Any, **kwargs: Any) -> Callable:
        return _with_data_options(super().callback(*args, **kwargs))


def _with_data_options(register: Callable) -> Callable:
    """A Typer decorator that registers the function with the two options added, and returns it as it was."""

    def decorator(func: Callable) -> Callable:
        register(takes_data_options(func))
        return func

    return decorator


def _group() -> None:
    """A verb group's own options: only `--data-dir` and `--config`."""


def settings_of(ctx: typer.Context) -> Settings:
    """The settings for this command: `--data-dir`, the environment, the `--config` file; exit 2 if invalid."""
    from models.settings import Settings
    from postdesk.settings_loading import SettingsError, load_settings

    if isinstance(ctx.find_root().obj, Settings):  # tests may hand in ready settings
        return ctx.find_root().obj
    config, overrides = option_overrides(ctx)
    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        fail_all(exc.problems)


def option_overrides(ctx: typer.Context) -> tuple[Path | None, dict[str, Any]]:
    """The `--config` file and the settings the options override (for `postdesk settings`)."""
    data_dir = ctx.meta.get(_KEYS["data_dir"])
    return ctx.meta.get(_KEYS["config"]), ({"data_dir": data_dir} if data_dir else {})
