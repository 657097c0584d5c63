"""Small shapes the tokenizers share: logarithmic count buckets, domain suffixes, generated-string shapes."""

from __future__ import annotations

import re
from collections.abc import Iterator

_DIGITS = re.compile(r"\d+")
_LETTERS = re.compile(r"[a-z]+")


def log_bucket(n: int) -> int:
    """0, 1, 2, 4, 8, ...: a logarithmic bucket so counts generalise."""
    return 0 if n <= 0 else 1 << (n.bit_length() - 1)


def domain_tokens(prefix: str, host: str) -> Iterator[str]:
    """The host and each of its parent domains: a.b.example.com, b.example.com, example.com, com."""
    parts = host.strip(".").lower().split(".")[-6:]
    for i in range(len(parts)):
        yield prefix + ".".join(parts[i:])


def shape(value: str) -> str:
    """A coarse shape of a generated string: letters → a, digits → 9, runs collapsed."""
    return _LETTERS.sub("a", _DIGITS.sub("9", value.strip().strip('"').lower()[:60]))[:20]
