"""`serve`'s daily jobs stop in time: a job that honours the stop request ends after its batch in
hand, one that does not is killed once the time `serve` has for stopping is up."""

from __future__ import annotations

import threading
import time

from postdesk.daily import DailyJob, DailyJobs
from waiting import wait_for


def polite(app, stop) -> dict:
    (app.settings.data_dir / "running").touch()
    stop.wait()  # a batch at a time, asking between them
    return {}


def stubborn(app, stop) -> dict:
    (app.settings.data_dir / "running").touch()
    while True:  # never asks
        time.sleep(0.05)


def started(settings, run) -> tuple[DailyJobs, threading.Thread]:
    daily = DailyJobs(settings, (DailyJob("job", run),))
    worker = threading.Thread(target=daily._run, args=("job",))  # as the scheduler's thread calls it at its time
    worker.start()
    wait_for(lambda: (settings.data_dir / "running").exists(), 60, what="the job running in its process")
    return daily, worker


def test_a_running_job_that_asks_between_batches_stops_when_told(settings):
    daily, worker = started(settings, polite)
    process = daily.running["job"]
    began = time.monotonic()
    daily.stop(within=30)
    assert time.monotonic() - began < 30 and process.exitcode == 0
    worker.join(10)
    assert not worker.is_alive() and not daily.running


def test_a_job_that_does_not_stop_is_killed_when_the_time_is_up(settings):
    daily, worker = started(settings, stubborn)
    process = daily.running["job"]
    began = time.monotonic()
    daily.stop(within=1.0)
    took = time.monotonic() - began
    assert 1.0 <= took < 10, took
    assert not process.is_alive() and process.exitcode != 0
    worker.join(10)
    assert not worker.is_alive()
