"""Garbage-collector settings for the long-running processes (SMTP edge, runner, prepare workers).

Each message allocates thousands of short-lived objects, so the collector runs often; every full
collection also walked the start-up heap (SQLAlchemy, NumPy, scikit-learn, the parser's tables),
which never becomes garbage. `freeze_startup_heap()` freezes that heap out of the collector's sight
and lets more young objects pile up between collections; reference counting still frees nearly
everything. It lives here, with the processes ingest starts, rather than being injected by
`postdesk`: the runner and its prepare workers call it as they start, and each is started by ingest.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # CPython's default is 700


def freeze_startup_heap() -> None:
    """Call once a process has imported and built what it keeps for its lifetime."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
