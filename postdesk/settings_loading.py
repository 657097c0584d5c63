"""Loading the settings (`models.settings`) from command-line options, the environment and the TOML
file, with every problem told as one line in the user's terms (`postdesk.settings_sources`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource
from pydantic_settings import SettingsError as SourceError

from models.settings import CONFIG_FILE, Settings, config_file
from postdesk.settings_sources import ConfigFile, Origin, explain, json_problems, origins


class SettingsError(Exception):
    """The configuration is invalid: one line per problem, naming the variable or the file and line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from `overrides` (command-line options), the environment and the TOML file
    (`config`, else POSTDESK_CONFIG); any problem becomes a `SettingsError` with one line per problem."""
    return load_with_origins(config, **overrides)[0]


def load_with_origins(config: Path | None = None, **overrides: Any) -> tuple[Settings, dict[str, Origin]]:
    """The settings, and where each value came from (`postdesk settings` shows both)."""
    token = CONFIG_FILE.set(config)
    try:
        path = config_file()
        if path is not None and not path.is_file():
            raise SettingsError([f"{path}: no such settings file (named by --config or POSTDESK_CONFIG)"])
        try:
            file = ConfigFile.read(path) if path is not None else None
        except ValueError as exc:
            raise SettingsError([str(exc)]) from None
        env_source = EnvSettingsSource(Settings)
        complex_fields = [n for n, f in Settings.model_fields.items() if env_source.field_is_complex(f)]
        if problems := json_problems(complex_fields, os.environ):
            raise SettingsError(problems)
        found = origins(Settings.model_fields, overrides, os.environ, file)
        try:
            return Settings(**overrides), found
        except ValidationError as exc:
            raise SettingsError(explain(exc, found, file)) from None
        except SourceError as exc:  # a source failed in a way checked for above only in part
            raise SettingsError([str(exc)]) from None
    finally:
        CONFIG_FILE.reset(token)
