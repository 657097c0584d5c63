"""Running the real `postdesk serve` command as a child process, as a user would, and looking at
its processes the way `ps` does."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from models.settings import Settings
from waiting import wait_for


def settings_env(settings: Settings, **overrides) -> dict[str, str]:
    """The environment that gives a `postdesk` command these settings, plus `overrides` by name."""
    env = dict(os.environ)
    env.update(
        {
            "POSTDESK_DATA_DIR": str(settings.data_dir),
            "POSTDESK_DATABASE_URL": settings.database_url,
            "POSTDESK_SMTP_PORT": "0",
            "POSTDESK_WEB_PORT": "0",
            "POSTDESK_MAILBOXES": json.dumps([m.model_dump() for m in settings.mailboxes]),
            "POSTDESK_SECRET_KEY": settings.secret_key,
            "POSTDESK_MIN_FREE_DISK": "0",
            "POSTDESK_RUNNER_POLL_INTERVAL": "0.05",
        }
    )
    env.update(
        {
            f"POSTDESK_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in overrides.items()
        }
    )
    return env


@dataclass
class Process:
    pid: int
    parent: int
    group: int
    state: str
    command: bytes


def processes() -> list[Process]:
    """Every process but the zombies (they have exited; only their exit status waits for a parent)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                fields, command = stat.read().rpartition(")")[2].split(), cmdline.read()
        except OSError:  # it ended while we looked
            continue
        if fields[0] != "Z":
            found.append(Process(int(pid), int(fields[1]), int(fields[2]), fields[0], command))
    return found


def spawned_children(pid: int) -> list[int]:
    """Children started by multiprocessing's spawn (the runner, prepare workers), not its resource tracker."""
    return [p.pid for p in processes() if p.parent == pid and b"spawn_main" in p.command]


def alive(pid: int) -> bool:
    return any(p.pid == pid for p in processes())


class ServeProcess:
    """`postdesk serve` in its own process group, so a SIGKILL takes the runner down with it."""

    def __init__(self, settings: Settings, log_path: Path, ready: bool = True, **overrides):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "postdesk", "serve"],
                env=settings_env(settings, **overrides),
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        try:
            self.port = self._read_port() if ready else None
        except BaseException:
            self.kill()  # not handed to the test, so nobody else would stop it
            raise

    def _read_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if match := re.search(r"SMTP: [\d.]+:(\d+)", line):
                return int(match[1])
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"postdesk serve did not start (exit {self.proc.poll()})")

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        wait_for(lambda: text in self.log(), timeout, what=f"{text!r} in the log of serve")

    def runner(self, not_pid: int | None = None, timeout: float = 60) -> int:
        """The pid of serve's runner process, once there is one (other than `not_pid`)."""
        return wait_for(
            lambda: next((pid for pid in spawned_children(self.proc.pid) if pid != not_pid), None),
            timeout,
            what="serve's runner process",
        )

    def left_behind(self) -> list[Process]:
        """Processes of serve's group still running: its children, once serve has gone."""
        return [p for p in processes() if p.group == self.proc.pid]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # serve and all its group have ended already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc.stdout.close()
        return code
