"""`postdesk settings`: the values in effect and where each came from; `--reference` for the documentation table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from postdesk.cli.common import fail_all, option_overrides, out


def show_settings(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    reference: bool = typer.Option(
        False, "--reference", help="Every setting with its default and meaning, as Markdown."
    ),
    readme: Path | None = typer.Option(None, "--readme", help="Rewrite the reference table in this file."),
) -> None:
    """The settings in effect and where each comes from: an option, the environment, the file, or the default."""
    from postdesk.settings_loading import SettingsError, load_with_origins
    from postdesk.settings_doc import settings_table, update_readme
    from postdesk.settings_sources import PREFIX, environment_names, shown_value

    if readme is not None:
        update_readme(readme)
        return
    if reference:
        out.print(settings_table(), markup=False, highlight=False, soft_wrap=True)
        return
    config, overrides = option_overrides(ctx)
    try:
        settings, origins = load_with_origins(config, **overrides)
    except SettingsError as exc:
        fail_all(exc.problems)
    rows = [
        (PREFIX + name.upper(), shown_value(name, getattr(settings, name)), str(origins[name]))
        for name in type(settings).model_fields
    ]
    ignored = sorted(
        var
        for name, var in environment_names(os.environ).items()
        if name not in type(settings).model_fields and name != "config"
    )
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "settings": {name: {"value": value, "from": origin} for name, value, origin in rows},
                    "ignored": ignored,
                }
            )
        )
        return
    width = max(len(name) for name, _, _ in rows)
    for name, value, origin in rows:
        out.print(f"{name:<{width}}  {value}  ({origin})", markup=False, highlight=False, soft_wrap=True)
    for var in ignored:
        out.print(
            f"note: {var} is set but is not a setting; it is ignored", markup=False, highlight=False, soft_wrap=True
        )
