"""The settings reference as a Markdown table, generated from the field descriptions (pasted into the README)."""

from __future__ import annotations

import json

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
