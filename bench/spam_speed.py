"""Speed: tokenize+score throughput vs bogofilter's bulk mode, per-message latencies, model memory.

Prints: messages/s for Postdesk (tokenize, hash and score ParsedMessage objects, parsing excluded)
and for `bogofilter -b -T` (which reads and parses the same bytes itself; trained first with -n/-s
on the same corpus in a temp -d dir) and their ratio (target >= 0.5); single-message score p50/p99
(target p99 <= 2 ms); learn and unlearn of one message p99 (<= 2 ms); model memory MiB (<= 64).

The machine's speed drifts within a minute here, so the two rates are taken in alternating rounds
(Postdesk, bogofilter, Postdesk, ...): the ratio printed is of the medians, with the range of the
rounds' own ratios.

Usage: .venv/bin/python -m bench.spam_speed [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or with -m
from bench import corpus  # noqa: E402
from classifier.filter import SpamFilter  # noqa: E402

MiB = 1024 * 1024


def postdesk_rate(spam_filter: SpamFilter, messages: list) -> float:
    started = time.perf_counter()
    for msg in messages:
        spam_filter.classify(msg)
    return len(messages) / (time.perf_counter() - started)


def trained_bogofilter(tmp: Path, raws: list[tuple[bytes, str]]) -> tuple[Path, list[Path]]:
    """bogofilter's word list trained on the messages (in `tmp`/db), and the messages' files."""
    paths = _write(tmp, raws)
    db = tmp / "db"
    db.mkdir()
    for label, flag in (("ham", "-n"), ("spam", "-s")):
        chosen = [str(p) for p, (_, theirs) in zip(paths, raws, strict=True) if theirs == label]
        subprocess.run(["bogofilter", "-d", str(db), flag, "-B", *chosen], check=True, stderr=subprocess.DEVNULL)
    return db, paths


def bogofilter_rate(db: Path, paths: list[Path]) -> float:
    names = "\n".join(map(str, paths)).encode()
    started = time.perf_counter()
    subprocess.run(["bogofilter", "-d", str(db), "-b", "-T"], input=names, capture_output=True, check=False)
    return len(paths) / (time.perf_counter() - started)


def _write(folder: Path, raws: list[tuple[bytes, str]]) -> list[Path]:
    paths = []
    for i, (raw, _) in enumerate(raws):
        path = folder / f"{i:05d}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def latencies_ms(action, items, clock=time.perf_counter) -> np.ndarray:
    """Per-item latency; clock=time.thread_time gives CPU time, which a busy machine's preemption can't inflate."""
    out = []
    for item in items:
        started = clock()
        action(item)
        out.append((clock() - started) * 1000)
    return np.array(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of the two rates")
    repeat = parser.parse_args().repeat
    if not corpus.available():
        print(f"corpus not found at {corpus.corpus_dir()} (set POSTDESK_CORPUS_DIR)", file=sys.stderr)
        return 2
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    loaded = corpus.load()
    messages = [msg for msg, _, _ in loaded]
    spam_filter = SpamFilter()
    learned = [(spam_filter.learn(msg, label), label) for msg, label, _ in loaded]
    rounds = []
    with tempfile.TemporaryDirectory(prefix="postdesk-speed-") as tmp:
        db, paths = trained_bogofilter(Path(tmp), [(raw, label) for _, label, raw in loaded])
        for _ in range(repeat):
            rounds.append((postdesk_rate(spam_filter, messages), bogofilter_rate(db, paths)))
    ours, theirs = (float(np.median(rates)) for rates in zip(*rounds, strict=True))
    ratios = sorted(o / t for o, t in rounds)
    score = latencies_ms(spam_filter.classify, messages)
    score_cpu = latencies_ms(spam_filter.classify, messages, time.thread_time)
    unlearn = latencies_ms(lambda fl: spam_filter.unlearn(*fl), learned)
    learn = latencies_ms(lambda fl: spam_filter.learn(*fl), learned)
    print(f"messages: {len(messages)} (mean {np.mean([len(f.ids) for f, _ in learned]):.0f} features each)")
    print(
        f"Postdesk tokenize+score: {ours:,.0f} msgs/s; bogofilter -b: {theirs:,.0f} msgs/s "
        f"(medians of {repeat} rounds); ratio {ours / theirs:.2f}, "
        f"rounds {ratios[0]:.2f}-{ratios[-1]:.2f} (target >= 0.5)"
    )
    print(
        f"score one message (tokenize+hash+score): p50 {np.percentile(score, 50):.3f} ms, "
        f"p99 {np.percentile(score, 99):.3f} ms (target p99 <= 2); "
        f"CPU time p50 {np.percentile(score_cpu, 50):.3f} ms, p99 {np.percentile(score_cpu, 99):.3f} ms"
    )
    print(
        f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(wall-clock p99 is preemption when busy)"
    )
    print(
        f"learn one message (features): p99 {np.percentile(learn, 99):.3f} ms; "
        f"unlearn p99 {np.percentile(unlearn, 99):.3f} ms (target <= 2)"
    )
    print(f"model memory: {spam_filter.model.nbytes / MiB:.1f} MiB (target <= 64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
