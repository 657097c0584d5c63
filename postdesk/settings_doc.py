"""The settings reference as a Markdown table, generated from the field descriptions (pasted into the README)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from postdesk.settings import Settings


def _default(field) -> str:
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, list):
        return json.dumps([v.model_dump() if isinstance(v, BaseModel) else v for v in value])
    return "" if value is None else str(value)


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `POSTDESK_{name.upper()}` | `{_default(field)}` | {field.description} |")
    return "\n".join(rows)


def update_readme(path: Path) -> None:
    """Replace the block between the settings markers with the current table."""
    text = path.read_text()
    start, end = text.index("<!-- settings:start"), text.index("<!-- settings:end -->")
    head = text[start:text.index("-->", start) + 3]
    path.write_text(text[:start] + head + "\n" + settings_table() + "\n" + text[end:])
