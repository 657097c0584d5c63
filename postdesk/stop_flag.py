"""A stop request that a signal handler may raise and any thread or `select` may wait for.

`threading.Event.set` takes a lock, so a handler that runs while its own thread holds that lock
(inside `Event.wait`) waits for ever, and a `multiprocessing.Event` shared with a child can be
left locked, or with a sleeper that never wakes, by a child that was killed. This flag is a pipe:
setting it writes a byte, waiting is `select`, and nothing can hold it.
"""

from __future__ import annotations

import os
import select
from contextlib import suppress


class StopFlag:
    """Set once, never cleared; `wait` and `is_set` as on `threading.Event`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._set = False

    def set(self) -> None:
        self._set = True
        with suppress(BlockingIOError):  # the pipe is full: it is readable already
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when `timeout` seconds passed first."""
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set
