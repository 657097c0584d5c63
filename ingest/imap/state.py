"""What an IMAP account has fetched so far, in `<data_dir>/imap/<account>.json`.

Per folder: UIDVALIDITY and the last UID spooled (the resume point), the UIDs spooled but not
yet flagged/moved/deleted (`pending`: done at the next pass, so a crash never repeats a fetch
for them), and status for `postdesk imap status`. Written atomically: temp file, fsync, rename.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.files import replace_durably

MAX_SKIPPED = 100  # newest kept; the log has the rest


@dataclass
class FolderState:
    uidvalidity: int | None = None
    last_uid: int = 0
    pending: list[int] = field(default_factory=list)
    imported: int = 0
    skipped: list[dict] = field(default_factory=list)
    last_sync: float | None = None
    last_error: str | None = None

    def skip(self, uid: int, reason: str) -> None:
        self.skipped = (self.skipped + [{"uid": uid, "reason": reason, "at": time.time()}])[-MAX_SKIPPED:]


@dataclass
class AccountState:
    """The state file of one account; `error` is the last account-wide failure (login, network)."""

    path: Path
    folders: dict[str, FolderState] = field(default_factory=dict)
    error: str | None = None
    error_at: float | None = None
    connected_at: float | None = None

    def folder(self, name: str) -> FolderState:
        return self.folders.setdefault(name, FolderState())

    def fail(self, message: str) -> None:
        self.error, self.error_at = message, time.time()

    def save(self) -> None:
        data = {
            "error": self.error,
            "error_at": self.error_at,
            "connected_at": self.connected_at,
            "folders": {name: asdict(fs) for name, fs in self.folders.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(self.path, json.dumps(data, indent=1).encode())


def state_path(data_dir: Path, account_name: str) -> Path:
    return Path(data_dir) / "imap" / f"{account_name}.json"


def load_state(data_dir: Path, account_name: str) -> AccountState:
    """The saved state, or an empty one (first connection) when there is no file yet."""
    path = state_path(data_dir, account_name)
    if not path.exists():
        return AccountState(path)
    data = json.loads(path.read_text())
    folders = {
        name: FolderState(**{k: v for k, v in fs.items() if k in FolderState.__dataclass_fields__})
        for name, fs in data.get("folders", {}).items()
    }
    return AccountState(path, folders, data.get("error"), data.get("error_at"), data.get("connected_at"))
