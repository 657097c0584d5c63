"""Durable file primitives (models/files.py): concurrent callers share a folder fsync, and a failed
one reaches every caller it was meant for."""

from __future__ import annotations

import errno
import os
import threading
from types import SimpleNamespace

import pytest

from models import files
from models.files import GroupFsync
from waiting import wait_for


class CountingWaits(threading.Condition):
    """A Condition that counts the threads that went to sleep in it: a waiter is counted while it
    still holds the lock, so whoever notifies (after taking the lock) finds it asleep."""

    count = 0

    def wait(self, timeout=None):
        CountingWaits.count += 1
        return super().wait(timeout)


@pytest.fixture
def waiting(monkeypatch):
    """models.files sees CountingWaits as threading.Condition; nothing else does."""
    CountingWaits.count = 0
    monkeypatch.setattr(files, "threading", SimpleNamespace(Lock=threading.Lock, Condition=CountingWaits))
    return CountingWaits


class FakeFsync:
    """Stands in for the folder fsync: counts calls, holds the first one, fails the chosen ones."""

    def __init__(self, failing: set[int] = frozenset()):
        self.calls, self.failing = 0, failing
        self.first_running, self.release_first = threading.Event(), threading.Event()

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == 1:
            self.first_running.set()
            self.release_first.wait(10)
        if self.calls in self.failing:
            raise OSError(errno.EIO, "Input/output error")


def run_while_first_fsync_runs(group: GroupFsync, fake: FakeFsync, waiting: CountingWaits, waiters: int = 8) -> list:
    """One caller starts an fsync; `waiters` more join while it runs; returns each one's outcome."""
    outcomes = []

    def call() -> None:
        try:
            group.fsync()
            outcomes.append("ok")
        except OSError as exc:
            outcomes.append(exc)

    first = threading.Thread(target=call)
    first.start()
    assert fake.first_running.wait(10)
    others = [threading.Thread(target=call) for _ in range(waiters)]
    for thread in others:
        thread.start()
    wait_for(lambda: waiting.count == waiters, 10, what="every later caller waiting for the next round")
    fake.release_first.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcomes


def test_callers_arriving_during_an_fsync_share_the_next_one(monkeypatch, tmp_path, waiting):
    fake = FakeFsync()
    monkeypatch.setattr(os, "fsync", fake)
    assert run_while_first_fsync_runs(GroupFsync(tmp_path), fake, waiting) == ["ok"] * 9
    assert fake.calls == 2  # the one they arrived during could not cover their renames


def test_a_failed_fsync_reaches_every_caller_of_its_round_and_the_next_round_runs(monkeypatch, tmp_path, waiting):
    fake, group = FakeFsync(failing={2}), GroupFsync(tmp_path)
    monkeypatch.setattr(os, "fsync", fake)
    outcomes = run_while_first_fsync_runs(group, fake, waiting)
    errors = [o for o in outcomes if o != "ok"]
    assert outcomes.count("ok") == 1 and len(errors) == 8  # the first caller's round went well
    assert all(isinstance(e, OSError) and "Input/output error" in str(e) for e in errors)
    group.fsync()
    assert fake.calls == 3
