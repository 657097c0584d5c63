"""A child process never outlives its parent: the runner dies with `serve`, a prepare worker with
its runner, whatever killed the parent (a SIGKILL runs no clean-up code).

On Linux the kernel sends the signal (PR_SET_PDEATHSIG) when the parent ends; elsewhere a thread
looks at the parent every second. Nothing is lost by dying: the spool still holds whatever was
not committed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a child; `parent_pid` is the pid the parent had when it started us."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(parent_pid,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # it ended before we asked to follow it
        os._exit(1)


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)
