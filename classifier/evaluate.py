"""Evaluation: metrics and protocols over lists of (features, label, timestamp).

Metrics: FP rate on ham and FN rate on spam among *decided* messages (unsure and untrained kept
apart and counted), and 1-ROCA % = 100 × area above the ROC curve of the scores (ties count half,
as `sklearn.metrics.roc_auc_score` does).
Protocols: k-fold cross-validation, time-ordered split, online (TREC: classify, then learn the
true label, in time order), and source shift (train without one source, judge that source).
A protocol takes `fit(train) -> judge`, where `judge(features)` returns
(score, verdict), or for online a learner with `judge` and `learn`; it returns one `Outcome` per
test message, so every filter — ours or an outside one — is measured with the same code.
"""

from __future__ import annotations

import email.utils
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from models.mail.message import ParsedMessage

Example = tuple[Any, str, float]  # (features, "ham"|"spam", POSIX timestamp)
Judge = Callable[[Any], tuple[float, str]]
DATE_TRUST_SECONDS = 2 * 86400  # a Date further than this from the first Received date is not believed


@dataclass(frozen=True)
class Outcome:
    """One test message: its true label, the filter's score and the filter's verdict."""

    label: str
    score: float
    verdict: str


@dataclass(frozen=True)
class Figures:
    """What the bench reports for one filter under one protocol."""

    n_ham: int
    n_spam: int
    fp: int
    fn: int
    unsure_ham: int
    unsure_spam: int
    fp_rate: float  # % of decided ham called spam
    fn_rate: float  # % of decided spam called ham
    one_minus_roca: float  # %

    @property
    def unsure(self) -> int:
        return self.unsure_ham + self.unsure_spam


class OnlineLearner(Protocol):
    def judge(self, features: Any) -> tuple[float, str]: ...

    def learn(self, features: Any, label: str) -> None: ...


def figures(outcomes: Sequence[Outcome]) -> Figures:
    """FP/FN rates among decided messages, unsure counts, and 1-ROCA %."""
    ham = [o for o in outcomes if o.label == "ham"]
    spam = [o for o in outcomes if o.label == "spam"]
    fp = sum(o.verdict == "spam" for o in ham)
    fn = sum(o.verdict == "ham" for o in spam)
    unsure_ham = sum(o.verdict not in ("ham", "spam") for o in ham)
    unsure_spam = sum(o.verdict not in ("ham", "spam") for o in spam)
    return Figures(
        len(ham),
        len(spam),
        fp,
        fn,
        unsure_ham,
        unsure_spam,
        _percent(fp, len(ham) - unsure_ham),
        _percent(fn, len(spam) - unsure_spam),
        one_minus_roca([o.label for o in outcomes], [o.score for o in outcomes]),
    )


def one_minus_roca(labels: Sequence[str], scores: Sequence[float] | np.ndarray) -> float:
    """100 × (1 - ROC AUC), spam the positive class; ties count half."""
    y = np.array([label == "spam" for label in labels])
    if y.all() or not y.any():
        return float("nan")
    return 100.0 * (1.0 - roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def cross_validate(
    examples: Sequence[Example],
    fit: Callable[[list[Example]], Judge],
    k: int = 10,
    seed: int = 0,
    on_fold: Callable[[int, int], None] = lambda done, k: None,
) -> list[Outcome]:
    """Stratified k-fold: each message is judged once, by a filter fitted on the other folds
    (`on_fold(done, k)` after each fold)."""
    labels = [label for _, label, _ in examples]
    outcomes = []
    folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    for done, (train_idx, test_idx) in enumerate(folds, 1):
        outcomes += _judge_all(fit([examples[i] for i in train_idx]), [examples[i] for i in test_idx])
        on_fold(done, k)
    return outcomes


def roc_points(outcomes: Sequence[Outcome], most: int = 200) -> list[list[float]]:
    """The ROC curve as [false positive rate, true positive rate] pairs (spam the positive class),
    from (0, 0) to (1, 1), thinned to at most `most` of its corners: enough to draw it, and only
    aggregates of the scores (no message can be told from them)."""
    y = np.array([o.label == "spam" for o in outcomes])
    if y.all() or not y.any():
        return []
    fpr, tpr, _ = roc_curve(y, np.array([o.score for o in outcomes], dtype=np.float64))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(most, len(fpr))).round().astype(int))
    return [[round(float(f), 5), round(float(t), 5)] for f, t in zip(fpr[keep], tpr[keep], strict=True)]


def score_histogram(outcomes: Sequence[Outcome], bins: int = 20) -> dict:
    """How many ham and how many spam scored in each of `bins` equal slices of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = {
        label: np.histogram([o.score for o in outcomes if o.label == label], edges)[0].tolist()
        for label in ("ham", "spam")
    }
    return {"bins": bins, **counts}


def time_split(
    examples: Sequence[Example], fit: Callable[[list[Example]], Judge], train_fraction: float = 0.7
) -> list[Outcome]:
    """Fit on the earliest `train_fraction` by time, judge the rest."""
    ordered = in_time_order(examples)
    cut = int(round(len(ordered) * train_fraction))
    return _judge_all(fit(ordered[:cut]), ordered[cut:])


def source_shift(
    examples: Sequence[Example], sources: Sequence[str], fit: Callable[[list[Example]], Judge], n_sources: int = 10
) -> dict[str, list[Outcome]]:
    """For each of the `n_sources` largest sources (`sources[i]` is example i's): fit on every other
    source's examples, judge this one's. Ties in size go by name, so the choice is deterministic."""
    sizes = Counter(sources)
    largest = sorted(sizes, key=lambda s: (-sizes[s], s))[:n_sources]
    return {
        source: _judge_all(
            fit([e for e, s in zip(examples, sources, strict=True) if s != source]),
            [e for e, s in zip(examples, sources, strict=True) if s == source],
        )
        for source in largest
    }


def online(examples: Sequence[Example], learner: OnlineLearner) -> list[Outcome]:
    """TREC-style: in time order, judge each message, then learn its true label."""
    outcomes = []
    for features, label, _ in in_time_order(examples):
        score, verdict = learner.judge(features)
        outcomes.append(Outcome(label, score, verdict))
        learner.learn(features, label)
    return outcomes


def in_time_order(examples: Sequence[Example]) -> list[Example]:
    """Sorted by timestamp; the sort is stable, so equal times keep their input order."""
    return sorted(examples, key=lambda e: e[2])


def message_time(msg: ParsedMessage) -> float:
    """The Date header, unless missing or far from the first Received date (spam dates lie)."""
    received = _first_received_time(msg)
    date = None if "date-missing" in msg.flags else msg.date
    if date is None or (received is not None and abs(date.timestamp() - received) > DATE_TRUST_SECONDS):
        return received if received is not None else (msg.date.timestamp() if msg.date else 0.0)
    return date.timestamp()


def _first_received_time(msg: ParsedMessage) -> float | None:
    for value in msg.header_all("received")[:1]:
        try:
            when = email.utils.parsedate_to_datetime(value.rpartition(";")[2].strip())
        except (TypeError, ValueError, IndexError):
            return None
        return when.timestamp() if isinstance(when, datetime) and when.tzinfo else None
    return None


def _judge_all(judge: Judge, examples: Sequence[Example]) -> list[Outcome]:
    return [Outcome(label, *judge(features)) for features, label, _ in examples]


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0
