"""The naive Bayes count model: per-feature spam/ham message counts, exact learn/unlearn, chi-square scoring.

Counts are int32 arrays over the hashed feature space, so learning adds one to each feature of a
message and unlearning subtracts it: unlearning is bit-for-bit the same as never having learned.

Scoring (SpamBayes, Robinson/Fisher):
1. Per-feature class probabilities: P(f | c) = (count_c(f) + alpha + m r(f)) / (n_c + 2 alpha + m).
   With m = 0 this is scikit-learn's BernoulliNB formula (`feature_log_prob_`; tests/classifier
   check it against BernoulliNB). m (`prior_messages`) is a prior worth m messages centred on the
   feature's pooled rate r(f) = (count_spam + count_ham) / (n_spam + n_ham): it keeps one spam
   out of two from making every word in it certain, and fades as the classes grow.
2. p(f) = P(f|spam) / (P(f|spam) + P(f|ham))   (equal class priors, Graham/Robinson)
3. Robinson's smoothing towards x with strength s: f = (s x + n p) / (s + n), n = count_spam + count_ham.
4. Only clues with |f - 0.5| >= min_dist, at most max_clues of the strongest, are combined with
   Fisher's chi-square method: score = (1 + Q(-2 Σ ln f) - Q(-2 Σ ln(1 - f))) / 2, Q = chi² survival.
   Where both tails are below double precision the score is the double next to 0.5 on the side
   of the smaller tail, not 0.5 itself: the order is kept, and 0.5 stays "no evidence".
5. Evidence in proportion to what the model knows: the body's log-odds are multiplied by the
   share of the message's features seen in training (its coverage). Features never seen give no
   clues (they sit at x), so without this a message that is mostly new words would be scored as
   surely as a familiar one, from the few words it shares with the training mail.
6. The body and the channel (`classifier.channel`: relays, lists; their own part of the feature
   space) are combined apart, and the channel's score moves the body's odds by at most a factor
   `channel_odds`: list and relay headers are evidence, never a verdict.

Why these defaults, with the figures: bench/results/spam_accuracy.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import chdtrc, expit  # chi-square survival, logistic; scipy comes with scikit-learn

from classifier.features import DEFAULT_N_FEATURES, as_ids, channel_start

FORMAT_VERSION = 2  # 2: channel tokens in their own part of the space, another tokenizer (retrain from 1)
LABELS = ("ham", "spam")


class ModelError(Exception):
    """The model was asked something impossible: an unknown label, unlearning what was never learned."""


@dataclass(frozen=True)
class ScoringParams:
    """How counts become a score. The shipped defaults are SpamBayes' published ones plus two bounds
    of our own, with min_dist chosen by the drift protocols, never by in-corpus fit
    (bench/results/spam_accuracy.md says why and what they measure); `classifier.tune.tune` fits
    s/min_dist/cutoffs to a deployment's own mail."""

    s: float = 0.45  # Robinson's strength of the prior x; SpamBayes 0.45 (bogofilter 0.0178)
    x: float = 0.5  # probability given to a feature never seen; SpamBayes 0.5
    alpha: float = 0.0  # BernoulliNB's additive smoothing of the class-conditional probabilities
    min_dist: float = 0.2  # clues nearer 0.5 than this are ignored; by the drift protocols (SpamBayes 0.1)
    max_clues: int = 150  # the strongest clues combined, body and channel each; SpamBayes 150
    prior_messages: float = 1.0  # m of step 1: one message's worth of "no difference between classes"
    channel_odds: float = 3.0  # most the channel may multiply or divide the body's odds by (step 6)
    coverage_power: float = 1.0  # the body's log-odds times coverage ** this (step 5); 0 turns step 5 off


@dataclass(frozen=True)
class Score:
    """A spam probability, the clues behind it ((feature id, its smoothed spam probability)) and the
    share of the message's features seen in training (step 5)."""

    probability: float
    evidence: list[tuple[int, float]]
    coverage: float


class CountModel:
    """Spam and ham message counts per hashed feature, and the number of messages of each class."""

    def __init__(self, n_features: int = DEFAULT_N_FEATURES, params: ScoringParams | None = None) -> None:
        self.n_features = n_features
        self.params = params or ScoringParams()
        self.spam_counts = np.zeros(n_features, dtype=np.int32)
        self.ham_counts = np.zeros(n_features, dtype=np.int32)
        self.n_spam = 0
        self.n_ham = 0

    @property
    def nbytes(self) -> int:
        return self.spam_counts.nbytes + self.ham_counts.nbytes

    def learn(self, features, label: str) -> None:
        """Count one message's distinct features under its label."""
        self._add(as_ids(features), label, 1)

    def unlearn(self, features, label: str) -> None:
        """Exactly undo one `learn` of the same features and label."""
        ids = as_ids(features)
        counts = self._counts(label)
        if self._n(label) < 1 or (ids.size and counts[ids].min() < 1):
            raise ModelError(f"cannot unlearn a {label} message that was not learned")
        self._add(ids, label, -1)

    def score(self, features, params: ScoringParams | None = None, evidence: int = 50) -> Score:
        """Chi-square combined spam probability of a message, from its features only, with its
        `evidence` strongest clues (strongest first)."""
        p = params or self.params
        ids = as_ids(features)  # sorted and distinct
        if ids.size and (ids[0] < 0 or ids[-1] >= self.n_features):
            ids = ids[(ids >= 0) & (ids < self.n_features)]
        probs = self.feature_probabilities(ids, p)
        seen = float(np.count_nonzero(self.spam_counts[ids] | self.ham_counts[ids])) / ids.size if ids.size else 0.0
        distance = np.abs(probs - 0.5)
        split = int(np.searchsorted(ids, channel_start(self.n_features)))  # ids are sorted
        body = _strongest(distance[:split], p.min_dist, p.max_clues)
        strong = np.concatenate([body, split + _strongest(distance[split:], p.min_dist, p.max_clues)])
        body_score, channel_score = _chi2_scores(probs[strong], body.size)
        shown = _strongest(distance[strong], 0.0, evidence) if strong.size > evidence else np.arange(strong.size)
        order = strong[shown[np.argsort(-distance[strong[shown]], kind="stable")]]
        clues = list(zip(ids[order].tolist(), probs[order].tolist(), strict=True))
        body_score = weighted(body_score, seen**p.coverage_power)
        return Score(tipped(body_score, channel_score, p.channel_odds), clues, seen)

    def feature_probabilities(self, ids: np.ndarray, p: ScoringParams) -> np.ndarray:
        """Robinson-smoothed spam probability of each feature (steps 1-3 of the module docstring)."""
        spam = self.spam_counts[ids].astype(np.float64)
        ham = self.ham_counts[ids].astype(np.float64)
        n = spam + ham
        prior = p.alpha + n * (p.prior_messages / max(self.n_spam + self.n_ham, 1))
        p_spam = (spam + prior) / max(self.n_spam + 2 * p.alpha + p.prior_messages, 1e-300)
        p_ham = (ham + prior) / max(self.n_ham + 2 * p.alpha + p.prior_messages, 1e-300)
        ratio = p_spam / np.maximum(p_spam + p_ham, 1e-300)  # 0 where never seen, and then n = 0: f = x
        return (p.s * p.x + n * ratio) / (p.s + n)

    def save(self, stem: str | os.PathLike) -> None:
        """Write `<stem>.npz` (the count arrays) and `<stem>.json` (counts and parameters); no pickle."""
        stem = Path(stem)
        _atomic_write(
            stem.with_name(stem.name + ".npz"),
            lambda f: np.savez_compressed(f, spam_counts=self.spam_counts, ham_counts=self.ham_counts),
        )
        meta = {
            "format": FORMAT_VERSION,
            "n_features": self.n_features,
            "n_spam": self.n_spam,
            "n_ham": self.n_ham,
            "params": asdict(self.params),
        }
        _atomic_write(stem.with_name(stem.name + ".json"), lambda f: f.write(json.dumps(meta, indent=1).encode()))

    @classmethod
    def load(cls, stem: str | os.PathLike) -> CountModel:
        """Read what `save` wrote, refusing pickled arrays and mismatched shapes."""
        stem = Path(stem)
        meta = json.loads(stem.with_name(stem.name + ".json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ModelError(
                f"model format {meta.get('format')!r} is not {FORMAT_VERSION}: its features came from "
                "another tokenizer; retrain (`postdesk spam train` with the corpus again)"
            )
        model = cls(int(meta["n_features"]), ScoringParams(**meta["params"]))
        with np.load(stem.with_name(stem.name + ".npz"), allow_pickle=False) as arrays:
            model.spam_counts = _checked(arrays["spam_counts"], model.n_features)
            model.ham_counts = _checked(arrays["ham_counts"], model.n_features)
        model.n_spam, model.n_ham = int(meta["n_spam"]), int(meta["n_ham"])
        return model

    def _add(self, ids: np.ndarray, label: str, delta: int) -> None:
        self._counts(label)[ids] += delta  # ids are distinct, so fancy-index add is exact
        if label == "spam":
            self.n_spam += delta
        else:
            self.n_ham += delta

    def _counts(self, label: str) -> np.ndarray:
        if label not in LABELS:
            raise ModelError(f"label must be 'ham' or 'spam', not {label!r}")
        return self.spam_counts if label == "spam" else self.ham_counts

    def _n(self, label: str) -> int:
        return self.n_spam if label == "spam" else self.n_ham


def chi2_combine(probs: np.ndarray) -> float:
    """Fisher/Robinson chi-square combining of clue probabilities into one score in [0, 1]."""
    return _chi2_scores(probs, probs.size)[0]


def _chi2_scores(clues: np.ndarray, split: int) -> tuple[float, float]:
    """chi2_combine of clues[:split] and of clues[split:], in one pass over the clues."""
    clipped = np.clip(clues, 1e-300, 1.0 - 1e-16)
    hammy_terms, spammy_terms = np.log(clipped), np.log1p(-clipped)
    parts = (
        (split, -2.0 * hammy_terms[:split].sum(), -2.0 * spammy_terms[:split].sum()),
        (clues.size - split, -2.0 * hammy_terms[split:].sum(), -2.0 * spammy_terms[split:].sum()),
    )
    dof = np.array([2 * n for n, _, _ in parts for _ in (0, 1)], dtype=np.float64)
    tails = chdtrc(dof, np.array([stat for _, hammy, spammy in parts for stat in (hammy, spammy)]))
    body, channel = (
        _from_tails(n, hammy, spammy, ham_q, spam_q)
        for (n, hammy, spammy), ham_q, spam_q in zip(parts, tails[0::2], tails[1::2], strict=True)
    )
    return body, channel


def _from_tails(n: int, hammy: float, spammy: float, ham_q: float, spam_q: float) -> float:
    """(1 + Q_ham - Q_spam) / 2; ham_q is small when the clues are hammy, spam_q when spammy."""
    if n == 0:
        return 0.5
    score = float(min(max((1.0 + ham_q - spam_q) / 2.0, 0.0), 1.0))
    if score == 0.5 and hammy != spammy:  # both tails below double precision: keep which one is smaller
        return float(np.nextafter(0.5, 0.0 if hammy > spammy else 1.0))
    return score


def weighted(score: float, weight: float) -> float:
    """The score with its log-odds multiplied by `weight` in [0, 1]. A score of exactly 0 or 1 (the
    chi-square tails beyond double precision) counts as the nearest score that is not."""
    if weight >= 1.0 or score == 0.5:
        return score
    p = min(max(score, 1e-300), 1.0 - 1e-16)
    return float(expit((math.log(p) - math.log1p(-p)) * weight))


def tipped(body: float, channel: float, limit: float) -> float:
    """The body's score with its odds moved by the channel's, at most by a factor `limit` either way."""
    if body in (0.0, 1.0) or channel == 0.5:
        return body
    factor = min(max(channel / (1.0 - channel) if channel < 1.0 else limit, 1.0 / limit), limit)
    if factor == 1.0:
        return body
    if factor > 1.0:  # the complement keeps the precision near 1
        return 1.0 - (1.0 - body) / ((1.0 - body) + body * factor)
    return body * factor / (body * factor + (1.0 - body))


def _strongest(distance: np.ndarray, min_dist: float, max_clues: int) -> np.ndarray:
    """Indices of the clues at least `min_dist` from 0.5, at most `max_clues` of the farthest."""
    candidates = np.flatnonzero(distance >= min_dist)
    if candidates.size <= max_clues:
        return candidates
    return candidates[np.argpartition(-distance[candidates], max_clues - 1)[:max_clues]]


def _checked(array: np.ndarray, n_features: int) -> np.ndarray:
    if array.shape != (n_features,):
        raise ModelError(f"count array has shape {array.shape}, expected ({n_features},)")
    return array.astype(np.int32, copy=False)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
