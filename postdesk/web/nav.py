"""What every signed-in page shows around its content: the queues with their counts."""

from __future__ import annotations

from postdesk.web.auth import Viewer
from tickets import queues


def nav(session, me: Viewer, department: int | None = None) -> dict:
    counts = queues.counts(session, me.scope, queues.Filters(department=department))
    return {"me": me, "queues": queues.QUEUES, "counts": counts, "cap": queues.COUNT_CAP}
