"""The daily jobs `serve` runs on the clock (APScheduler), each in a child process of its own.

The jobs are data: `DAILY_JOBS`, by name. At `retention_at` (UTC) each starts in a spawned process,
so neither the SMTP edge nor the runner waits for it and `serve` can stop it: SIGTERM asks it to stop
after the batch in hand (its work is in committed batches, and the next run finishes it); one still
running when `serve` must be gone is killed. A run missed by less than `retention_misfire_grace`
seconds still starts; several missed runs make one (coalesce); a job never runs twice at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as time_of_day, UTC
from multiprocessing import get_context
from typing import TYPE_CHECKING

from models.settings import Settings
from postdesk.stop_flag import StopFlag

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from apscheduler.schedulers.background import BackgroundScheduler

    from postdesk.app import App

log = logging.getLogger("postdesk.daily")
_SPAWN = get_context("spawn")
KILLED_WAIT = 5.0  # seconds for a killed job's process to be reaped


@dataclass(frozen=True)
class DailyJob:
    name: str
    run: Callable[[App, StopFlag], dict]  # in the job's own process; returns counts for the log


def retention_rules(app: App, stop: StopFlag) -> dict:
    """Every retention rule that is on, the blob sweep last (`retention.rules`)."""
    reports = app.retention().run(actor="scheduler", stop=stop.is_set)
    return {name: report.done for name, report in reports.items() if report.done}


def backup_expiry(app: App, stop: StopFlag) -> dict:
    """Backups older than `backup_keep_days` (`retention.backup.expire_backups`)."""
    from retention.backup import expire_backups

    return {"backups_deleted": expire_backups(app.settings, datetime.now(UTC))}


DAILY_JOBS: tuple[DailyJob, ...] = (
    DailyJob("retention", retention_rules),
    DailyJob("backup-expiry", backup_expiry),
)


def _job_process(settings_data: dict, name: str, run: Callable[[App, StopFlag], dict], serve_pid: int) -> None:
    from ingest.child_process import die_with_parent
    from postdesk.app import App, configure_logging

    die_with_parent(serve_pid)
    stop = StopFlag()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # serve decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(**settings_data)
    configure_logging(settings)
    app = App.open(settings, migrate=False)
    try:
        log.info("daily job %s finished: %s", name, run(app, stop))
    finally:
        app.db.dispose()


class DailyJobs:
    """The scheduler of `serve`'s daily jobs and the processes running them."""

    def __init__(self, settings: Settings, jobs: tuple[DailyJob, ...] = DAILY_JOBS):
        self.settings, self.jobs = settings, jobs
        self.scheduler: BackgroundScheduler | None = None
        self.running: dict[str, BaseProcess] = {}  # job name → its process, while it runs
        # Only the thread that started a job joins its process (a second join could find it reaped by
        # the first and see no exit code); `stop` waits on this for `running` to empty instead.
        self._ended = threading.Condition()

    def start(self) -> None:
        """Schedule the jobs (a thread; nothing runs now). No time set: nothing is scheduled."""
        if not self.settings.retention_at:
            return
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        at = time_of_day.fromisoformat(self.settings.retention_at)
        scheduler = self.scheduler = BackgroundScheduler(timezone="UTC")
        for job in self.jobs:
            scheduler.add_job(
                self._run,
                CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone="UTC"),
                args=[job.name],
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(self.settings.retention_misfire_grace),
            )
        scheduler.start()
        log.info("daily jobs (%s) at %s UTC", ", ".join(job.name for job in self.jobs), self.settings.retention_at)

    def _run(self, name: str) -> None:
        job = next(job for job in self.jobs if job.name == name)
        process = _SPAWN.Process(
            target=_job_process,
            name=f"postdesk-{name}",  # `job.run`: a module-level function
            args=(self.settings.model_dump(), name, job.run, os.getpid()),
        )
        log.info("daily job %s starts", name)
        process.start()
        self.running[name] = process
        try:
            process.join()
        finally:
            with self._ended:
                self.running.pop(name, None)
                self._ended.notify_all()
        if process.exitcode:
            log.error("daily job %s ended with exit code %s; the next run finishes its work", name, process.exitcode)

    def ask_to_stop(self) -> None:
        """No new runs; a running job is asked to stop after the batch in hand."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for process in list(self.running.values()):
            process.terminate()

    def stop(self, within: float) -> None:
        """`ask_to_stop`, then wait up to `within` seconds for the jobs; one still running is killed."""
        self.ask_to_stop()
        with self._ended:
            if self._ended.wait_for(lambda: not self.running, timeout=within):
                return
            for name, process in self.running.items():
                log.error("daily job %s did not stop in time; killed (the next run finishes its work)", name)
                process.kill()
            self._ended.wait_for(lambda: not self.running, timeout=KILLED_WAIT)
