"""The SQLite write-ahead log through a long run: its largest size while distinct messages (the
corpus, copied until there are --messages of them) go through `postdesk serve`, sampled every
20 ms, then its size once the run is over, beside the database's.

    python bench/wal.py [--messages 9000] [--concurrency 8] [--readers 0]

--readers N: N threads read the database all the time in short transactions (as `postdesk
status`, an import's summary or a web view do), which can keep a checkpoint from starting the
log over. The runner truncates it past `models.db.WAL_LIMIT`; figures in bench/results/wal.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sqlite3
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = ROOT / ".bench"  # beside ./data, as bench/ingest.py's default
sys.path.insert(0, str(ROOT))
from bench import corpus  # noqa: E402

# bench/ingest.py's client and server helpers; loaded by path, as its name hides the ingest package
_spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

MiB = 2**20


def payloads(folder: Path, count: int) -> list[bytes]:
    """`count` distinct messages: the corpus over and over, each copy with a header of its own."""
    messages = bench.load_messages(folder, 10**6)
    return [bench.dot_stuffed(b"X-Bench-Copy: %d\r\n" % n + messages[n % len(messages)]) for n in range(count)]


class Sampler(threading.Thread):
    """The largest size `path` had, looked at every 20 ms until stopped."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.largest, self.stop = path, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                self.largest = max(self.largest, self.path.stat().st_size)
            except FileNotFoundError:
                pass


def reader(database: Path, stop: threading.Event, reads: list[int]) -> None:
    with closing(sqlite3.connect(database, timeout=30)) as db:
        while not stop.is_set():
            db.execute("SELECT count(*), max(id) FROM messages").fetchone()
            reads[0] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=9000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--readers", type=int, default=0)
    args = parser.parse_args()
    if not corpus.available():
        sys.exit(f"corpus not found at {corpus.corpus_dir()} (set POSTDESK_CORPUS_DIR)")
    sent = payloads(corpus.corpus_dir(), args.messages)
    print(
        f"{len(sent)} distinct messages, {sum(map(len, sent)) / MiB:.0f} MiB, concurrency {args.concurrency}, "
        f"{args.readers} readers"
    )
    DATA_ROOT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA_ROOT) as folder:
        data_dir = Path(folder)
        proc, port = bench.start(bench.SERVERS["e2e"], bench.env_for(data_dir), data_dir / "server.log")
        stop_readers, reads = threading.Event(), [0]
        try:
            bench.warm_up("e2e", port, data_dir)
            sampler = Sampler(data_dir / "postdesk.db-wal")
            sampler.start()
            readers = [
                threading.Thread(target=reader, args=(data_dir / "postdesk.db", stop_readers, reads), daemon=True)
                for _ in range(args.readers)
            ]
            for thread in readers:
                thread.start()
            started = time.monotonic()
            asyncio.run(bench._blast(port, sent, args.concurrency))
            while not bench.drained(data_dir):
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            stop_readers.set()
            for thread in readers:
                thread.join()
            sampler.stop.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(60)
        stored, bad = bench.stored(data_dir)
        wal = data_dir / "postdesk.db-wal"
        after = wal.stat().st_size if wal.exists() else 0
        print(
            f"stored {stored} of {len(sent)} ({bad} in bad/) in {elapsed:.0f} s ({stored / elapsed:.0f} msgs/s), "
            f"{reads[0]} reads"
        )
        print(
            f"WAL largest {sampler.largest / MiB:.1f} MiB, after the run {after / MiB:.1f} MiB; "
            f"database {(data_dir / 'postdesk.db').stat().st_size / MiB:.0f} MiB"
        )


if __name__ == "__main__":
    main()
