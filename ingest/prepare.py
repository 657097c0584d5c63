"""The half of the pipeline that needs no database: CRLF normalisation, hashing, parsing and spam
tokenizing, run for the next batch while the runner's transaction holds the current one.

With `workers` > 0 it runs in worker processes, so parsing uses the second core while the runner
stores; with 0 it runs inline (the same code, no overlap). A worker that dies is replaced, and the
batch it held is prepared inline instead: parsing never raises, so only a crash can get here.
A worker dies with its runner (`ingest.child_process`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime, UTC

from classifier.features import Features, featurize
from classifier.tokenize import tokens
from ingest.child_process import die_with_parent
from ingest.spool import Entry
from ingest.startup_heap import freeze_startup_heap
from models.mail.message import ParsedMessage
from models.mail.mime_limits import ParseLimits
from models.mail.parse import normalise_crlf, parse, silence_mailparser

log = logging.getLogger("postdesk.runner")


@dataclass(frozen=True)
class PrepareOptions:
    limits: ParseLimits
    trusted_relays: tuple[str, ...]
    max_tokens: int
    n_features: int | None  # the live spam model's feature space; None: nothing to score with


@dataclass
class Prepared:
    """A spool entry made ready for the pipeline; `entry.raw` is CRLF-normalised."""

    entry: Entry
    parsed: ParsedMessage
    features: Features | None
    n_features: int | None

    @property
    def sha256(self) -> str:
        return self.parsed.raw_sha256


def prepare(entry: Entry, options: PrepareOptions) -> Prepared:
    raw = normalise_crlf(entry.raw)
    received_at = datetime.fromtimestamp(entry.envelope.received_at, UTC)
    parsed = parse(raw, received_at=received_at, limits=options.limits, trusted_relays=options.trusted_relays)
    features = None
    if options.n_features:
        features = featurize(tokens(parsed, options.max_tokens), options.n_features)
    return Prepared(replace(entry, raw=raw), parsed, features, options.n_features)


def prepare_all(entries: list[Entry], options: PrepareOptions) -> list[Prepared]:
    return [prepare(entry, options) for entry in entries]


def _ready() -> bool:
    return True


def _start_worker(runner_pid: int) -> None:
    die_with_parent(runner_pid)
    silence_mailparser()
    freeze_startup_heap()


class Preparer:
    """Prepares batches, in worker processes when there are any."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, entries: list[Entry], options: PrepareOptions) -> Future:
        if self.workers:
            try:
                return self._executor().submit(prepare_all, entries, options)
            except BrokenProcessPool:
                self._reset()
        done: Future = Future()
        done.set_result(prepare_all(entries, options))
        return done

    def result(self, future: Future, entries: list[Entry], options: PrepareOptions) -> list[Prepared]:
        try:
            return future.result()
        except BrokenProcessPool:
            log.error("a prepare worker died; preparing its batch of %d inline", len(entries))
            self._reset()
            return prepare_all(entries, options)

    def start(self) -> None:
        """Start the workers now (they import the parser and tokenizer: about a second of CPU)."""
        if self.workers:
            self._executor().submit(_ready).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(os.getpid(),)
            )
        return self._pool

    def _reset(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
