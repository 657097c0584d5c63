"""What the runner and the IMAP pollers are told to stop by: a `threading.Event`, or anything that
answers the same two questions (serve's `StopFlag`, which a signal handler may set)."""

from __future__ import annotations

from typing import Protocol


class StopSignal(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...
