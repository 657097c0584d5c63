"""Spool.put micro-benchmark: CPU and wall time per message at 1 and 8 writer threads.

Each round puts the first N corpus messages into a fresh spool (on the same disk as the temp
folder) from a pool of writer threads, as the SMTP edge does; CPU is the whole process's.

    .venv/bin/python bench/spool.py [--corpus DIR] [--limit 1000] [--threads 1,8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose ingest.py would shadow the package
from ingest.spool import Envelope, Spool  # noqa: E402
from tests.corpus import corpus_files, wire_bytes  # noqa: E402


def one_round(messages: list[bytes], threads: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per message for one fresh spool."""
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(threads) as writers:
        spool = Spool(Path(folder))
        list(writers.map(lambda _: None, range(threads)))  # start the threads before the clock
        envelope = Envelope(mail_from="relay@example.org", rcpt_tos=["support@example.com"], peer="0123456789ab")
        cpu, wall = time.process_time(), time.perf_counter()
        list(writers.map(lambda raw: spool.put(raw, envelope), messages))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / len(messages) * 1000, wall / len(messages) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpus = Path(os.environ.get("POSTDESK_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=default_corpus / "spamassassin-2002")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = [wire_bytes(path) for _, path in corpus_files(args.corpus)][:args.limit]
    print(f"{len(messages)} messages, {sum(map(len, messages)) / len(messages) / 1024:.1f} KiB average, "
          f"{args.rounds} rounds each")
    print(f"{'threads':>7} {'CPU ms/msg':>22} {'wall ms/msg':>22}   (median [min-max])")
    for threads in map(int, args.threads.split(",")):
        cpu, wall = zip(*(one_round(messages, threads) for _ in range(args.rounds)))
        print(f"{threads:>7} {_spread(cpu):>22} {_spread(wall):>22}", flush=True)


def _spread(values: tuple[float, ...]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


if __name__ == "__main__":
    main()
