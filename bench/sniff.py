"""Attachment sniffing (libmagic) against parsing, CPU per corpus message.

Parses every corpus message (the baseline: what preparing a message costs anyway), then sniffs
every attachment the parser split off, as the store stage does; also sniffs a few synthetic
payloads that reach `SNIFF_BYTES`. Prints CPU per message and the ratio sniff/parse, best of
--rounds alternating rounds.

    .venv/bin/python bench/sniff.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose ingest.py would shadow the package
from models.mail.parse import parse  # noqa: E402
from tests.corpus import corpus_files, wire_bytes  # noqa: E402
from tickets.filenames import SNIFF_BYTES, sniff_type  # noqa: E402

from bench.corpus import RECEIVED_AT, corpus_dir  # noqa: E402

LARGE = {
    "text": b"hello world, a line of text\n" * (2 * SNIFF_BYTES // 28),
    "html": b"<html><body>" + b"<p>text</p>" * (2 * SNIFF_BYTES // 11),
    "random": os.urandom(2 * SNIFF_BYTES),
}


def cpu(work) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raws = [wire_bytes(path) for _, path in corpus_files(corpus_dir())]
    payloads = [part.payload for raw in raws for part in parse(raw, received_at=RECEIVED_AT).attachments]
    parse_times, sniff_times = [], []
    for _ in range(args.rounds):
        parse_times.append(cpu(lambda: [parse(raw, received_at=RECEIVED_AT) for raw in raws]))
        sniff_times.append(cpu(lambda: [sniff_type(payload) for payload in payloads]))
    parse_ms, sniff_ms = (min(t) * 1000 / len(raws) for t in (parse_times, sniff_times))
    print(f"{len(raws)} messages, {len(payloads)} attachments")
    print(f"parse  {parse_ms:.3f} ms CPU a message")
    print(f"sniff  {sniff_ms:.4f} ms CPU a message  ratio sniff/parse {sniff_ms / parse_ms:.4f}")
    for name, payload in LARGE.items():
        fifty = [payload] * 50
        each = min(cpu(lambda fifty=fifty: [sniff_type(p) for p in fifty]) for _ in range(args.rounds)) * 1000 / 50
        print(
            f"sniff one {len(payload) // 1024} KiB {name} payload  {each:.3f} ms  ratio to parse {each / parse_ms:.2f}"
        )


if __name__ == "__main__":
    main()
