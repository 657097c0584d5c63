"""Tokens → hashed features: a sorted array of distinct feature ids, plus the token behind each id.

The hash is CRC-32 of the UTF-8 token modulo the feature space: the same in every process and
every Python version (no PYTHONHASHSEED), and several times faster than blake2b
(bench/results/spam_speed.md). A message is represented by token *presence*, not counts.
Channel tokens (`classifier.channel`, the "via:" prefix) are hashed into the last 1/16 of the space
and every other token into the rest, so the model can tell the two apart by id alone and a stored
ledger row still says which was which. Why 2^22: bench/results/spam_accuracy.md.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from classifier.channel import CHANNEL_PREFIX

DEFAULT_N_FEATURES = 1 << 22
CHANNEL_SHARE = 16  # the last 1/16 of the feature space holds the channel's tokens (classifier.channel)
FEATURE_DTYPE = np.dtype("<u4")  # what `to_bytes` writes: little-endian uint32, 4 bytes a feature


@dataclass(frozen=True)
class Features:
    """One message's distinct feature ids (sorted) and, for evidence, one token for each id."""

    ids: np.ndarray
    names: dict[int, str] = field(default_factory=dict)
    n_features: int = 0  # the space the ids were hashed into; 0 when unknown (read back from a ledger)

    def to_bytes(self) -> bytes:
        """The ids as little-endian uint32: what a ledger keeps to unlearn the message exactly."""
        return self.ids.astype(FEATURE_DTYPE).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        return cls(np.unique(np.frombuffer(data, dtype=FEATURE_DTYPE).astype(np.int64)))

    def name(self, feature: int) -> str:
        return self.names.get(feature, f"#{feature}")


def channel_start(n_features: int) -> int:
    """The first feature id of the channel's part of the space: ids from here on are channel tokens."""
    return n_features - n_features // CHANNEL_SHARE


def feature_id(token: str, n_features: int = DEFAULT_N_FEATURES) -> int:
    """The stable hash of one token: a channel token into [channel_start, n_features), any other
    token into [0, channel_start)."""
    start = channel_start(n_features)
    crc = zlib.crc32(token.encode("utf-8", "surrogatepass"))
    return start + crc % (n_features - start) if token.startswith(CHANNEL_PREFIX) else crc % start


def featurize(tokens: Iterable[str], n_features: int = DEFAULT_N_FEATURES) -> Features:
    """Distinct feature ids of the tokens; the first token seen names a shared id."""
    distinct = list(dict.fromkeys(tokens))
    start, crcs = channel_start(n_features), [zlib.crc32(t.encode("utf-8", "surrogatepass")) for t in distinct]
    hashes = [
        start + crc % (n_features - start) if t.startswith(CHANNEL_PREFIX) else crc % start
        for t, crc in zip(distinct, crcs, strict=True)
    ]
    names = dict(zip(reversed(hashes), reversed(distinct), strict=True))  # the last write wins: the first token
    ids = np.fromiter(names, dtype=np.int64, count=len(names))
    ids.sort()
    return Features(ids, names, n_features)


def as_ids(features: Features | np.ndarray | Iterable[int]) -> np.ndarray:
    """Sorted distinct int64 ids from a Features, an array or any iterable of ints."""
    if isinstance(features, Features):
        return features.ids
    return np.unique(np.asarray(list(features) if not isinstance(features, np.ndarray) else features, dtype=np.int64))
