"""The runner alone, fed at a steady rate: its own thread's CPU a message, the batch sizes it
took, and with --profile where that CPU went (cProfile on the thread's CPU clock).

A feeder thread puts corpus messages into the spool of a fresh data folder, --rate a second;
the runner runs in the main thread as `postdesk serve` runs it (prepare worker apart, spam model
trained on the corpus), until every message is stored. Only the runner's thread is measured:
the feeder, the spool's unlink thread and the blob fsync threads are not. Batch sizes follow
the runner's speed (a faster runner takes smaller batches), as under `bench/ingest.py`, so the
figure holds each batch's fixed cost as the live runner pays it; profiling slows the runner,
so the batches it takes are larger.

    python bench/runner_feed.py [--rate 300] [--limit 1500] [--repeat 3] [--profile 30] [--data-root DIR]
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose ingest.py would shadow the package
from models.mail.envelope import Envelope  # noqa: E402
from models.settings import MailboxConfig, Settings  # noqa: E402
from postdesk.app import App  # noqa: E402
from tests.corpus import bench_options, corpus_files, wire_bytes  # noqa: E402

MAILBOX = {"address": "support@example.com", "department": "Support"}


def trained(corpus: Path, root: Path) -> Path:
    """A data folder whose spam filter was trained on the corpus (as bench/ingest.py's e2e)."""
    folder = root / "trained"
    env = dict(
        os.environ,
        POSTDESK_DATA_DIR=str(folder),
        POSTDESK_MAILBOXES=json.dumps([MAILBOX]),
        POSTDESK_MIN_FREE_DISK="0",
        POSTDESK_DATABASE_URL="",
    )
    command = ["spam", "train", "--ham", str(corpus / "ham"), "--spam", str(corpus / "spam")]
    subprocess.run([sys.executable, "-m", "postdesk", *command], env=env, check=True, capture_output=True)
    return folder


class _Stop:
    """The runner's stop signal, set by the feeder once every message is stored."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)


def one_round(messages: list[bytes], rate: float, template: Path, root: Path, profile: Path | None) -> dict:
    data = Path(tempfile.mkdtemp(dir=root))
    try:
        shutil.copytree(template, data, dirs_exist_ok=True)
        settings = Settings(data_dir=data, mailboxes=[MailboxConfig(**MAILBOX)], min_free_disk=0, log_level="WARNING")
        app = App.open(settings)
        runner = app.runner()
        runner.warm_up()
        stop, sizes = _Stop(), []
        commit = runner._commit

        def counted(prepared):
            sizes.append(len(prepared))
            commit(prepared)

        runner._commit = counted  # type: ignore[method-assign]

        def feed() -> None:
            started = time.monotonic()
            for n, raw in enumerate(messages):
                if (delay := started + n / rate - time.monotonic()) > 0:
                    time.sleep(delay)
                app.spool.put(raw, Envelope(mail_from="relay@example.org", rcpt_tos=[MAILBOX["address"]]))
            while runner.stats["stored"] < len(messages):
                time.sleep(0.01)
            stop.event.set()

        feeder = threading.Thread(target=feed)
        profiler = cProfile.Profile(time.thread_time) if profile else None
        feeder.start()
        cpu = time.thread_time()
        if profiler:
            profiler.enable()
        runner.run(stop)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu = time.thread_time() - cpu
        feeder.join()
        app.db.dispose()
        return {"ms": cpu / len(messages) * 1000, "batches": len(sizes), "stored": runner.stats["stored"]}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = bench_options(__doc__.splitlines()[0], ROOT, limit=1500)
    parser.add_argument("--rate", type=float, default=300.0, help="messages a second into the spool")
    parser.add_argument("--profile", type=int, metavar="N", help="one more round under cProfile: its top N functions")
    args = parser.parse_args()
    args.data_root.mkdir(parents=True, exist_ok=True)
    messages = [wire_bytes(path) for _, path in corpus_files(args.corpus)][: args.limit]
    with tempfile.TemporaryDirectory(dir=args.data_root) as scratch:
        template = trained(args.corpus, Path(scratch))
        figures = []
        for n in range(args.repeat):
            result = one_round(messages, args.rate, template, args.data_root, None)
            figures.append(result["ms"])
            print(
                f"round {n + 1}: runner thread {result['ms']:.3f} ms CPU a message, {result['batches']} batches "
                f"(mean {result['stored'] / result['batches']:.1f}), stored {result['stored']}",
                flush=True,
            )
        print(f"median {statistics.median(figures):.3f} ms a message at {args.rate:.0f} msgs/s")
        if args.profile:
            out = Path(scratch) / "runner.prof"
            result = one_round(messages, args.rate, template, args.data_root, out)
            print(f"\nunder cProfile: {result['ms']:.3f} ms a message, {result['batches']} batches")
            pstats.Stats(str(out)).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
