"""Spool micro-benchmark: CPU and wall time per message, the two ways messages reach the spool.

  put      `Spool.put` from a pool of N threads, as IMAP and import call it
  flusher  N puts at once from an event loop through `SpoolFlusher`, as the SMTP edge does

Each round puts the first messages of the corpus into a fresh spool (on the same disk as the
temp folder); CPU is the whole process's.

    .venv/bin/python bench/spool.py [--corpus DIR] [--limit 1000] [--levels 1,8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose ingest.py would shadow the package
from ingest.smtp import SpoolFlusher  # noqa: E402
from ingest.spool import Spool  # noqa: E402
from models.mail.envelope import Envelope  # noqa: E402
from tests.corpus import corpus_files, wire_bytes  # noqa: E402

ENVELOPE = Envelope(mail_from="relay@example.org", rcpt_tos=["support@example.com"], peer="0123456789ab")


def with_threads(spool: Spool, messages: list[bytes], threads: int) -> tuple[float, float]:
    with ThreadPoolExecutor(threads) as writers:
        list(writers.map(lambda _: None, range(threads)))  # start the threads before the clock
        return timed(lambda: list(writers.map(lambda raw: spool.put(raw, ENVELOPE), messages)))


def with_flusher(spool: Spool, messages: list[bytes], at_once: int) -> tuple[float, float]:
    flusher = SpoolFlusher(spool)

    async def blast() -> None:
        pending = iter(messages)

        async def sender() -> None:
            for raw in pending:  # the senders share one iterator: each message is put once
                await flusher.put(raw, ENVELOPE)

        await asyncio.gather(*(sender() for _ in range(at_once)))

    try:
        return timed(lambda: asyncio.run(blast()))
    finally:
        flusher.stop()


def timed(work) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def one_round(way, messages: list[bytes], level: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per message for one fresh spool."""
    with tempfile.TemporaryDirectory() as folder:
        cpu, wall = way(Spool(Path(folder)), messages, level)
    return cpu / len(messages) * 1000, wall / len(messages) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpus = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus / "spamassassin-2002")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--levels", default="1,8", help="threads for put, puts at once for the flusher")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = [wire_bytes(path) for _, path in corpus_files(args.corpus)][: args.limit]
    print(
        f"{len(messages)} messages, {sum(map(len, messages)) / len(messages) / 1024:.1f} KiB average, "
        f"{args.rounds} rounds each"
    )
    print(f"{'way':>8} {'level':>5} {'CPU ms/msg':>22} {'wall ms/msg':>22}   (median [min-max])")
    for level in map(int, args.levels.split(",")):
        for name, way in (("put", with_threads), ("flusher", with_flusher)):
            cpu, wall = zip(*(one_round(way, messages, level) for _ in range(args.rounds)), strict=True)
            print(f"{name:>8} {level:>5} {_spread(cpu):>22} {_spread(wall):>22}", flush=True)


def _spread(values: tuple[float, ...]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


if __name__ == "__main__":
    main()
