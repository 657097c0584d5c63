"""The message store's write path: its statements on the DB-API cursor (`tickets.store.sql`) against
the same statements through SQLAlchemy Core (`connection.execute`), by the runner's CPU a message.

Each round spools N corpus messages into a fresh data folder and drains them with the real runner
in a child process (the prepare worker parses and tokenizes apart, so the figure is the runner's
own work: the pipeline's stages and the store). The two ways take turns, --repeat rounds each, and
the script prints each round, the medians and their ratio.

    python bench/store_seam.py [--limit 2000] [--repeat 3] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ingest.py would hide the ingest package: this folder off the path, the tests' corpus reader on it
sys.path[:] = [str(ROOT / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
from corpus import bench_options  # noqa: E402


def through_core() -> None:
    """Run the store's statements with SQLAlchemy Core's per-call machinery, as before the fast path."""
    from tickets.store.sql import Statement

    Statement.one = lambda self, session, params: session.connection().execute(self.statement, params).first()
    Statement.run = lambda self, session, params: session.connection().execute(self.statement, params).rowcount
    Statement.many = lambda self, session, rows: (
        session.connection().execute(self.statement, rows).rowcount if rows else 0
    )


def drain(way: str, corpus: Path, limit: int, root: Path) -> dict:
    """One round in this process: spool, then drain with the runner; the runner process's CPU a message."""
    from corpus import corpus_files, wire_bytes
    from models.mail.envelope import Envelope
    from models.settings import MailboxConfig, Settings
    from postdesk.app import App

    if way == "core":
        through_core()
    messages = [wire_bytes(path) for _, path in corpus_files(corpus)]
    messages = messages[:: max(1, len(messages) // limit)][:limit]  # ham and spam alike
    data = Path(tempfile.mkdtemp(dir=root))
    try:
        settings = Settings(
            data_dir=data,
            mailboxes=[MailboxConfig(address="support@example.com", department="Support")],
            min_free_disk=0,
            runner_prepare_workers=1,
            secret_key="bench",
            log_level="WARNING",
        )
        app = App.open(settings)
        for raw in messages:
            app.spool.put(raw, Envelope(mail_from="relay@example.org", rcpt_tos=["support@example.com"]))
        runner = app.runner()
        runner.warm_up()
        cpu, started = time.process_time(), time.monotonic()
        runner.drain()
        cpu, wall = time.process_time() - cpu, time.monotonic() - started
        app.db.dispose()
        return {"ms": cpu / len(messages) * 1000, "rate": len(messages) / wall, "stored": runner.stats["stored"]}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = bench_options(__doc__.splitlines()[0], ROOT, limit=2000)
    parser.add_argument("--round", choices=("cursor", "core"), help=argparse.SUPPRESS)  # a child's one round
    args = parser.parse_args()
    args.data_root.mkdir(parents=True, exist_ok=True)
    if args.round:
        print(json.dumps(drain(args.round, args.corpus, args.limit, args.data_root)))
        return
    figures: dict[str, list[float]] = {"cursor": [], "core": []}
    print(f"{args.limit} corpus messages a round, runner CPU a message (the prepare worker apart)")
    for n in range(args.repeat):
        for way in figures:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--round",
                    way,
                    "--corpus",
                    str(args.corpus),
                    "--limit",
                    str(args.limit),
                    "--data-root",
                    str(args.data_root),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            figures[way].append(result["ms"])
            print(
                f"round {n + 1} {way:>6}: {result['ms']:.3f} ms, {result['rate']:.0f} msgs/s, "
                f"stored {result['stored']}",
                flush=True,
            )
    cursor, core = (statistics.median(figures[way]) for way in ("cursor", "core"))
    ratios = sorted(b / a for a, b in zip(figures["cursor"], figures["core"], strict=True))
    print(
        f"median: cursor {cursor:.3f} ms, core {core:.3f} ms; core / cursor {core / cursor:.2f} "
        f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
