"""Running the real `postdesk serve` command as a child process, as a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from postdesk.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "POSTDESK_DATA_DIR": str(settings.data_dir),
        "POSTDESK_DATABASE_URL": settings.database_url,
        "POSTDESK_SMTP_PORT": "0",
        "POSTDESK_WEB_PORT": "0",
        "POSTDESK_MAILBOXES": json.dumps([m.model_dump() for m in settings.mailboxes]),
        "POSTDESK_SECRET_KEY": settings.secret_key,
        "POSTDESK_MIN_FREE_DISK": "0",
        "POSTDESK_RUNNER_POLL_INTERVAL": "0.05",
    })
    return env


class ServeProcess:
    """`postdesk serve` in its own process group, so a SIGKILL takes the runner down with it."""

    def __init__(self, settings: Settings, log_path: Path):
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "postdesk", "serve"], env=settings_env(settings),
                                     stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        self.port = self._read_port()

    def _read_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if match := re.search(r"SMTP: [\d.]+:(\d+)", line):
                return int(match[1])
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"postdesk serve did not start (exit {self.proc.poll()})")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)
