"""Hostile inputs against ordinary ones: what a crafted message costs the tokenizer and the
filename cleaner, as a ratio of the same function on an ordinary input timed in the same run.

The tests check what these functions return for such inputs; how long they take is measured here
(a time limit inside a test fails on a loaded machine and proves nothing on a fast one). Each
figure is the median of --repeat timings, taken alternately with the ordinary input's.

    python bench/worst_cases.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or with -m
from classifier.tokenize import tokens  # noqa: E402
from models.mail.message import Address, ParsedMessage  # noqa: E402
from tickets.filenames import clean_filename  # noqa: E402


def message(text: str = "", html: str = "", subject: str = "") -> ParsedMessage:
    return ParsedMessage(
        raw_sha256="0" * 64,
        message_id="id@example.com",
        subject=subject,
        from_=Address("Alice", "alice@example.com"),
        to=[Address("", "support@example.org")],
        headers=[("from", "Alice <alice@example.com>"), ("subject", subject)],
        text=text,
        html=html,
    )


ORDINARY_TEXT = (
    "Hello, the invoice for order 4411 is missing the VAT number. Could you send it again? Thanks, Alice\n"
) * 20
GARBAGE = bytes(range(256)).decode("latin-1") * 1000 + "\udcff\ud800"

# name: (hostile call, ordinary call of the same function)
CASES: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "tokenize a 20 MB body": (
        lambda: tokens(message("word " * 4_000_000, html="<p>x</p>" * 2_500_000)),
        lambda: tokens(message(ORDINARY_TEXT)),
    ),
    "tokenize 100,000 distinct tokens": (
        lambda: tokens(message(" ".join(f"tok{i}" for i in range(100_000)))),
        lambda: tokens(message(ORDINARY_TEXT)),
    ),
    "tokenize binary garbage": (
        lambda: tokens(message(GARBAGE, html=GARBAGE, subject=GARBAGE[:300])),
        lambda: tokens(message(ORDINARY_TEXT)),
    ),
    "clean a filename with 200,000 spaces": (
        lambda: clean_filename("a" + " " * 200_000 + "b"),
        lambda: clean_filename("invoice 4411.pdf"),
    ),
}


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':<40} {'hostile ms':>11} {'ordinary ms':>12} {'ratio':>9}  (medians of {args.repeat})")
    for name, (hostile, ordinary) in CASES.items():
        pairs = [(seconds(hostile), seconds(ordinary)) for _ in range(args.repeat)]
        slow, fast = (statistics.median(column) for column in zip(*pairs, strict=True))
        print(f"{name:<40} {slow * 1000:>11.1f} {fast * 1000:>12.3f} {slow / fast:>9.0f}")


if __name__ == "__main__":
    main()
