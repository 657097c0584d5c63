"""The settings reference as a Markdown table, generated from the field descriptions (pasted into the README)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from models.settings import ImapAccount, MailboxConfig, Settings


def _default(field) -> str:
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, list):
        return json.dumps([v.model_dump() if isinstance(v, BaseModel) else v for v in value])
    return "" if value is None else str(value)


def _table(model: type[BaseModel], key) -> list[str]:
    rows = ["| name | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        default = "(required)" if field.is_required() else f"`{_default(field)}`"
        rows.append(f"| `{key(name)}` | {default} | {field.description or ''} |")
    return rows


def settings_table() -> str:
    """The settings, then the fields of each item of POSTDESK_MAILBOXES and POSTDESK_IMAP_ACCOUNTS."""
    lines = _table(Settings, lambda name: f"POSTDESK_{name.upper()}")
    for title, model in (("Each mailbox", MailboxConfig), ("Each IMAP account", ImapAccount)):
        lines += ["", f"{title}:", ""] + _table(model, lambda name: name)
    return "\n".join(lines)


def update_readme(path: Path) -> None:
    """Replace the block between the settings markers with the current table."""
    text = path.read_text()
    start, end = text.index("<!-- settings:start"), text.index("<!-- settings:end -->")
    head = text[start : text.index("-->", start) + 3]
    path.write_text(text[:start] + head + "\n" + settings_table() + "\n" + text[end:])
