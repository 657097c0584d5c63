"""Waiting for a fact with a deadline, instead of sleeping and hoping it has happened."""

from __future__ import annotations

import time
from typing import TypeVar
from collections.abc import Callable

T = TypeVar("T")


def wait_for(fact: Callable[[], T], timeout: float = 30.0, what: str = "the condition", every: float = 0.02) -> T:
    """Return `fact()`'s first true value; fail the test when `timeout` seconds pass without one.

    The timeout is a deadline for a broken build, not a measurement: a test that asserts a time
    (because the time is the behaviour) measures it itself.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = fact()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
