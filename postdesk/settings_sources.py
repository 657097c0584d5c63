"""Where each setting comes from, in the user's own terms, and settings errors told in those terms.

A value comes from a command-line option (`--data-dir`), an environment variable
(`POSTDESK_SMTP_PORT`), a line of the TOML file, or the default. `postdesk settings` shows it;
an invalid value is reported as one line naming the variable, or the file and line, the user
would edit, never the internal field name alone. Values are never repeated in errors: an IMAP
password or a database URL may be among them.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

PREFIX = "POSTDESK_"
OPTIONS = {"data_dir": "--data-dir"}  # the settings a command-line option can set


@dataclass(frozen=True)
class Origin:
    """Where one setting's value came from: kind is "option", "env", "file" or "default"."""

    kind: str
    where: str = ""  # the option, the variable, or "FILE, line N"

    def __str__(self) -> str:
        return self.where or self.kind


class ConfigFile:
    """The TOML settings file: its values, and the line each top-level key is set on."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()
        self.values = tomllib.loads(text)

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        """The parsed file; raises ValueError with one line naming the file (and line) on any problem."""
        try:
            return cls(path, path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not UTF-8 text, as TOML must be") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}{_toml_position(str(exc))}") from None

    def line_of(self, loc: tuple) -> int | None:
        """The line (1-based) setting `loc[0]`; in the `[[loc[0]]]` table numbered `loc[1]`, the line
        of its key `loc[2]`, else of the table's header."""
        key = re.escape(str(loc[0]))
        tables = [i for i, line in enumerate(self.lines) if re.match(rf"\s*\[\[\s*{key}\s*\]\]", line)]
        if tables and len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(tables):
            start = tables[loc[1]]
            found = self._key_line(str(loc[2]), start + 1) if len(loc) > 2 else None
            return found or start + 1
        return self._key_line(str(loc[0]), 0) or (tables[0] + 1 if tables else None)

    def _key_line(self, key: str, start: int) -> int | None:
        """The line of `key = ...` from `start` up to the next table header."""
        for i in range(start, len(self.lines)):
            if re.match(r"\s*\[", self.lines[i]):
                return None
            if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", self.lines[i]):
                return i + 1
        return None

    def where(self, loc: tuple) -> str:
        line = self.line_of(loc)
        return f"{self.path}, line {line}" if line else str(self.path)


def _toml_position(message: str) -> str:
    """tomllib's "Invalid value (at line 3, column 7)" as ", line 3, column 7: Invalid value"."""
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message)
    if match is None:
        return f": {message}"
    return f", line {match[2]}, column {match[3]}: {match[1]}"


def environment_names(environ: Mapping[str, str]) -> dict[str, str]:
    """Field name → the POSTDESK_ variable setting it (matched without regard to case, as pydantic-settings does)."""
    return {key[len(PREFIX) :].lower(): key for key in environ if key.upper().startswith(PREFIX)}


def origins(
    fields: Mapping[str, Any], overrides: Mapping[str, Any], environ: Mapping[str, str], config: ConfigFile | None
) -> dict[str, Origin]:
    """Each field's origin, by the settings' precedence: option, environment, file, default."""
    env = environment_names(environ)
    found = {}
    for name in fields:
        if name in overrides:
            found[name] = Origin("option", OPTIONS.get(name, name))
        elif name in env:
            found[name] = Origin("env", env[name])
        elif config is not None and name in config.values:
            found[name] = Origin("file", config.where((name,)))
        else:
            found[name] = Origin("default")
    return found


def json_problems(complex_fields: list[str], environ: Mapping[str, str]) -> list[str]:
    """One line for each environment variable of a list setting that is not valid JSON."""
    env, problems = environment_names(environ), []
    for name in complex_fields:
        if name not in env:
            continue
        try:
            json.loads(environ[env[name]])
        except json.JSONDecodeError as exc:
            problems.append(f"{env[name]}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    return problems


def _path(loc: tuple) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "not a known setting" if len(error["loc"]) == 1 else "not a known field"
    return error["msg"].removeprefix("Value error, ")


def explain(error: ValidationError, found: Mapping[str, Origin], config: ConfigFile | None) -> list[str]:
    """One line per problem, naming what the user set: `POSTDESK_SMTP_PORT: ...`, `FILE, line 3: smtp_port: ...`."""
    lines = []
    for problem in error.errors():
        loc, message = tuple(problem["loc"]), _message(problem)
        if not loc:  # a rule across settings: name each setting as the user set it
            lines.append(_name_fields(message, found))
            continue
        origin = found.get(str(loc[0])) or Origin("file")  # an unknown key comes from the file
        if origin.kind == "file" and config is not None:
            lines.append(f"{config.where(loc)}: {loc[0]}{_path(loc[1:])}: {message}")
        else:
            lines.append(f"{_user_name(str(loc[0]), origin)}{_path(loc[1:])}: {message}")
    return lines


def _user_name(name: str, origin: Origin) -> str:
    if origin.kind in ("option", "env"):
        return origin.where
    if origin.kind == "file":
        return f"{name} ({origin.where})"
    return PREFIX + name.upper()


def _name_fields(message: str, found: Mapping[str, Origin]) -> str:
    return re.sub(r"\b[a-z][a-z0-9_]*\b", lambda m: _user_name(m[0], found[m[0]]) if m[0] in found else m[0], message)


def shown_value(name: str, value: Any) -> str:
    """A setting's value for display, with secrets hidden."""
    if name == "secret_key":
        return "(set)" if value else "(generated in DATA_DIR/secret.key)"
    if name == "database_url":
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value) if value else "(SQLite in DATA_DIR/postdesk.db)"
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value])
    return "" if value is None else str(value)
