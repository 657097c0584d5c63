"""Running the retention rules by hand or on the clock: a dry run listing what is due, or the work
in small committed batches.

Each batch is one transaction (a ticket's messages all go in the same one: a reader never sees half
a ticket) and checks its ids again, so a run killed anywhere and started again finishes the work,
and mail or holds arriving meanwhile are respected. `stop` is asked between batches. The run is
audited with its counts (never an address), also when it was stopped or failed partway.

    retention = Retention(db, store, policy, clock=utcnow)
    retention.dry_run(["spam"])          # → {"spam": Report(due=[ids...])}
    retention.run([], actor="scheduler")  # every rule that is on
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import Database
from retention.audit import record
from retention.free_pages import free_pages
from retention.holds import held
from retention.rules import RULE_NAMES, RULES, Context, Policy, SweepRule
from tickets.store import MessageStore

log = logging.getLogger("postdesk.retention")

BATCH = 100  # tickets (or attachments, contacts, raw messages) per transaction
Progress = Callable[[str, int, int], None]  # rule, done, total


class RetentionError(Exception):
    """A run that cannot start as asked (an unknown rule); the message is for people."""


@dataclass
class Report:
    rule: str
    unit: str
    off: bool = False
    due: list[int] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)

    def add(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.done[name] = self.done.get(name, 0) + int(value)


def _nothing(_rule: str, _done: int, _total: int) -> None:
    pass


@dataclass
class Retention:
    db: Database
    store: MessageStore
    policy: Policy
    clock: Callable[[], datetime] = utcnow
    batch: int = BATCH

    def rules(self, names: Sequence[str]) -> list:
        """The rules named (every rule when none is), in their declared order."""
        if unknown := [n for n in names if n not in RULE_NAMES]:
            raise RetentionError(f"no rule {', '.join(map(repr, unknown))}: the rules are {', '.join(RULE_NAMES)}")
        return [rule for rule in RULES if not names or rule.name in names]

    def _context(self, session: Session, now: datetime) -> Context:
        return Context(self.db, self.store, self.policy, now, held(session, now))

    def dry_run(self, names: Sequence[str] = ()) -> dict[str, Report]:
        """What each rule would remove now: counts and ids; nothing changes."""
        now, reports = self.clock(), {}
        with self.db.read() as session:
            ctx = self._context(session, now)
            for rule in self.rules(names):
                report = reports[rule.name] = Report(rule.name, rule.unit, off=not rule.enabled(self.policy))
                if not report.off:
                    report.due = rule.due(session, ctx)
        return reports

    def run(
        self,
        names: Sequence[str] = (),
        actor: str = "retention",
        progress: Progress = _nothing,
        stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, Report]:
        now, reports = self.clock(), {}
        outcome = "stopped"
        try:
            for rule in self.rules(names):
                if stop():
                    break
                report = reports[rule.name] = Report(rule.name, rule.unit, off=not rule.enabled(self.policy))
                if not report.off and not self._run_rule(rule, report, now, progress, stop):
                    break
            else:
                outcome = "finished"
        except BaseException:
            outcome = "failed"
            raise
        finally:
            try:
                self._finish(reports, actor, now, outcome)
            except Exception:
                if outcome != "failed":
                    raise
                log.exception("the failed retention run could not be audited")  # the first error goes on up
        return reports

    def _run_rule(self, rule, report: Report, now: datetime, progress: Progress, stop: Callable[[], bool]) -> bool:
        """One rule's work, batch by batch; False when stopped before the end."""
        with self.db.read() as session:
            report.due = rule.due(session, self._context(session, now))
        progress(rule.name, 0, len(report.due))
        if isinstance(rule, SweepRule):
            report.add(rule.sweep(self._context_outside(now)))
        else:
            for start in range(0, len(report.due), self.batch):
                if stop():
                    return False
                with self.db.write() as session:
                    report.add(rule.apply(session, self._context(session, now), report.due[start : start + self.batch]))
                progress(rule.name, min(start + self.batch, len(report.due)), len(report.due))
        progress(rule.name, len(report.due), len(report.due))
        return True

    def _context_outside(self, now: datetime) -> Context:
        with self.db.read() as session:
            return self._context(session, now)

    def _finish(self, reports: dict[str, Report], actor: str, now: datetime, outcome: str) -> None:
        """Freed pages when anything went, then the audit record: counts only."""
        removed = any(value for name, r in reports.items() if name != "sweep" for value in r.done.values())
        pages = free_pages(self.db) if removed else {}
        with self.db.write() as session:
            record(
                session,
                actor,
                "retention-run",
                "",
                {
                    "outcome": outcome,
                    "started_at": now.isoformat(),
                    "pages": pages,
                    "rules": {
                        name: {"off": True} if r.off else {"due": len(r.due), **r.done} for name, r in reports.items()
                    },
                },
            )
        log.info("retention run %s: %s", outcome, {name: r.done for name, r in reports.items() if r.done})
