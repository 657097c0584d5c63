"""Evaluate the filter on two folders of messages: what `postdesk spam evaluate` calls.

`evaluate_folders(ham_dir, spam_dir, folds=K | online=True, scores_out=PATH)` reads every file under
each folder (recursively, hidden files skipped, so a Maildir's cur/ and new/ both count), strips a
leading mbox "From " line as the benches do, parses with `models.mail.parse.parse`, and measures the
shipped `SpamFilter` defaults with the protocols of `classifier.evaluate`:
- `folds=K`: stratified K-fold cross-validation (each message judged once by a filter trained on the
  other folds); `tune=True` also tunes parameters and cutoffs inside each training part (nested, the
  bench's procedure, and much slower: bench/results/spam_speed.md);
- `online=True`: TREC-style, in time order: judge each message, then learn its true label.
It writes one TSV row per message (path, true label, score, verdict) and returns the figures.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from classifier import evaluate
from classifier.evaluate import Example, Outcome
from classifier.features import DEFAULT_N_FEATURES, Features, featurize
from classifier.filter import SpamFilter
from classifier.tokenize import tokens
from classifier.tune import tune as tune_inside
from models.mail.parse import parse, strip_mbox_from
from models.settings import HAM_CUTOFF, SPAM_CUTOFF

Progress = Callable[[str, int, int], None]  # (phase, done, total): "reading" then "judging"


def evaluate_folders(
    ham_dir: str | os.PathLike,
    spam_dir: str | os.PathLike,
    *,
    folds: int | None,
    online: bool,
    scores_out: str | os.PathLike,
    progress: Progress | None = None,
    tune: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure the filter on ham_dir and spam_dir; returns figures, writes per-message scores as TSV.

    Exactly one of `folds` (an int >= 2) and `online=True`. Returned keys: protocol, n_ham, n_spam,
    fp, fn, fp_rate and fn_rate (% of *decided* ham / spam), unsure_ham, unsure_spam, unsure,
    one_minus_roca (%, None when a class is missing), ham_cutoff, spam_cutoff (the shipped ones, or
    per fold when tuned: then "tuned" lists them), unreadable (paths that could not be read),
    scores_out. Raises ValueError for a bad protocol choice or a missing folder.
    """
    if online == (folds is not None):
        raise ValueError("choose exactly one protocol: folds=K or online=True")
    if folds is not None and folds < 2:
        raise ValueError("folds must be at least 2")
    report = progress or (lambda phase, done, total: None)
    files = [(path, "ham") for path in _files(ham_dir)] + [(path, "spam") for path in _files(spam_dir)]
    examples, paths, unreadable = _read(files, report)
    if folds is not None and min(sum(e[1] == c for e in examples) for c in ("ham", "spam")) < folds:
        raise ValueError(f"{folds}-fold CV needs at least {folds} readable messages of each class")

    features = [f for f, _, _ in examples]
    indexed: list[Example] = [(i, label, when) for i, (_, label, when) in enumerate(examples)]
    judged: dict[int, tuple[float, str]] = {}
    tuned: list[tuple[float, float, float, float, bool]] = []
    done = [0]

    def record(i: int, score: float, verdict: str) -> tuple[float, str]:
        judged[i] = (score, verdict)
        done[0] += 1
        report("judging", done[0], len(indexed))
        return score, verdict

    if online:
        protocol = "online, time order"
        learner = _OnlineLearner(features, record)
        evaluate.online(indexed, learner)
    else:
        assert folds is not None  # exactly one of the two, checked above
        protocol = f"{folds}-fold CV" + (" (tuned inside each training part)" if tune else "")

        def fit(train: list[Example]):
            spam_filter = SpamFilter()
            if tune:
                choice = tune_inside([(features[i], label, when) for i, label, when in train])
                tuned.append(
                    (
                        choice.params.s,
                        choice.params.min_dist,
                        choice.ham_cutoff,
                        choice.spam_cutoff,
                        choice.neutral_unsure,
                    )
                )
                spam_filter = choice.spam_filter()
            for i, label, _ in train:
                spam_filter.learn(features[i], label)
            return lambda i: record(i, *_verdict(spam_filter, features[i]))

        evaluate.cross_validate(indexed, fit, k=folds, seed=seed)

    outcomes = [Outcome(label, *judged[i]) for i, label, _ in indexed]
    _write_scores(Path(scores_out), paths, outcomes)
    f = evaluate.figures(outcomes)
    result: dict[str, Any] = {
        "protocol": protocol,
        "n_ham": f.n_ham,
        "n_spam": f.n_spam,
        "fp": f.fp,
        "fn": f.fn,
        "fp_rate": f.fp_rate,
        "fn_rate": f.fn_rate,
        "unsure_ham": f.unsure_ham,
        "unsure_spam": f.unsure_spam,
        "unsure": f.unsure,
        "one_minus_roca": None if math.isnan(f.one_minus_roca) else f.one_minus_roca,
        "ham_cutoff": HAM_CUTOFF,
        "spam_cutoff": SPAM_CUTOFF,
        "unreadable": [str(p) for p in unreadable],
        "scores_out": str(scores_out),
    }
    if tuned:
        names = ("s", "min_dist", "ham_cutoff", "spam_cutoff", "neutral_unsure")
        result["tuned"] = [dict(zip(names, t, strict=True)) for t in tuned]
    return result


class _OnlineLearner:
    def __init__(self, features: list[Features], record) -> None:
        self.filter = SpamFilter()
        self.features = features
        self.record = record

    def judge(self, i: int) -> tuple[float, str]:
        return self.record(i, *_verdict(self.filter, self.features[i]))

    def learn(self, i: int, label: str) -> None:
        self.filter.learn(self.features[i], label)


def _verdict(spam_filter: SpamFilter, features: Features) -> tuple[float, str]:
    verdict = spam_filter.classify(features)
    return verdict.score, verdict.label


def _files(folder: str | os.PathLike) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"not a folder: {root}")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _read(
    files: list[tuple[Path, str]], report: Progress
) -> tuple[list[tuple[Features, str, float]], list[Path], list[Path]]:
    """(features, label, time) per readable file, their paths, and the unreadable paths."""
    examples, paths, unreadable = [], [], []
    for n, (path, label) in enumerate(files, 1):
        try:
            raw = strip_mbox_from(path.read_bytes())
            received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            unreadable.append(path)
            continue
        msg = parse(raw, received_at=received)
        examples.append((featurize(tokens(msg), DEFAULT_N_FEATURES), label, evaluate.message_time(msg)))
        paths.append(path)
        report("reading", n, len(files))
    return examples, paths, unreadable


def _write_scores(out: Path, paths: list[Path], outcomes: list[Outcome]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(("path", "label", "score", "verdict"))
        for path, o in zip(paths, outcomes, strict=True):
            writer.writerow((str(path), o.label, f"{o.score:.10g}", o.verdict))
