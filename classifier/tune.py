"""Honest tuning: scoring parameters, cutoffs and the neutral rule, by repeated k-fold CV inside training data only.

The inner folds reuse one model: learn the whole training set once, then for each fold unlearn
its messages (exact), score them, and learn them back — no retraining per fold.
Out-of-fold scores of `repeats` differently shuffled k-fold runs are pooled; parameters are chosen
for the lowest pooled 1-ROCA, then cutoffs and the neutral rule (a score of exactly 0.5 is unsure
whatever the cutoffs, `classifier.filter.label_by_cutoffs`) together for the lowest SpamBayes cost (10 per
false positive, 1 per false negative, 0.2 per unsure); ties go to the narrower band, then to no rule.

Why 1-ROCA first, why the neutral rule is a candidate, why the cost is pooled over REPEATS
shufflings: the inner-fold figures that decided each are in bench/results/spam_accuracy.md (the
notebook of model format 1). In short: choosing parameters and cutoffs jointly by cost picked
whichever setting happened to show no false positive (winner's curse), and one shuffling's false
positive count is noise, as scores in the conflict band swing between two shufflings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product

import numpy as np
from sklearn.model_selection import StratifiedKFold

from classifier.evaluate import Example, one_minus_roca
from classifier.features import DEFAULT_N_FEATURES
from classifier.filter import NEUTRAL, SpamFilter
from classifier.model import CountModel, ScoringParams

COST_FP, COST_FN, COST_UNSURE = 10.0, 1.0, 0.2
REPEATS = 3
# Candidates: the shipped defaults, and s × min_dist with every clue (max_clues = the token cap), which
# in-corpus favours (bench/results/spam_accuracy.md); SpamBayes' s 0.45 and bogofilter's min_dev
# 0.375 included. x stays 0.5 and the grid small enough for nested CV.
PARAM_GRID = (ScoringParams(),) + tuple(
    replace(ScoringParams(), s=s, min_dist=d, max_clues=5000)
    for s, d in product((0.45, 0.1, 0.03, 0.01, 0.003), (0.1, 0.25, 0.375))
)
HAM_CUTOFFS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
SPAM_CUTOFFS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Choice:
    """What the inner folds chose, and the pooled inner-fold figures that chose it."""

    params: ScoringParams
    ham_cutoff: float
    spam_cutoff: float
    neutral_unsure: bool  # a score of exactly 0.5 is unsure whatever the cutoffs (`classifier.filter.label_by_cutoffs`)
    cost: float = float("nan")  # pooled inner-fold cost, per repeat
    one_minus_roca: float = float("nan")  # pooled inner-fold 1-ROCA %

    def spam_filter(self, n_features: int = DEFAULT_N_FEATURES) -> SpamFilter:
        """An untrained filter that scores and decides as chosen."""
        return SpamFilter(
            CountModel(n_features, self.params),
            ham_cutoff=self.ham_cutoff,
            spam_cutoff=self.spam_cutoff,
            neutral_unsure=self.neutral_unsure,
        )


def tune(
    train: Sequence[Example],
    k: int = 5,
    n_features: int = DEFAULT_N_FEATURES,
    grid: Sequence[ScoringParams] = PARAM_GRID,
    seed: int = 0,
    repeats: int = REPEATS,
) -> Choice:
    """Best parameters (pooled 1-ROCA), then cutoffs and neutral rule (pooled cost), from `repeats`
    k-fold runs in `train`."""
    labels = [label for _, label, _ in train] * repeats
    runs = [inner_scores(train, k, n_features, grid, seed + r) for r in range(repeats)]
    pooled = [np.concatenate([run[g] for run in runs]) for g in range(len(grid))]
    roca = [one_minus_roca(labels, scores) for scores in pooled]
    best = int(np.nanargmin(roca))
    ham_cutoff, spam_cutoff, neutral_unsure, cost = best_cutoffs(labels, pooled[best])
    return Choice(grid[best], ham_cutoff, spam_cutoff, neutral_unsure, cost / repeats, roca[best])


def inner_scores(
    train: Sequence[Example], k: int, n_features: int, grid: Sequence[ScoringParams], seed: int
) -> list[np.ndarray]:
    """Out-of-fold scores of every training message, one array per parameter set."""
    model = CountModel(n_features)
    for features, label, _ in train:
        model.learn(features, label)
    labels = [label for _, label, _ in train]
    scores = [np.zeros(len(train)) for _ in grid]
    for _, fold in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(train)), labels):
        _score_fold(model, [train[i] for i in fold], fold, grid, scores)
    return scores


def _score_fold(model: CountModel, held_out: list[Example], positions: np.ndarray, grid, scores) -> None:
    for features, label, _ in held_out:
        model.unlearn(features, label)
    for position, (features, _, _) in zip(positions, held_out, strict=True):
        for g, params in enumerate(grid):
            scores[g][position] = model.score(features, params).probability
    for features, label, _ in held_out:
        model.learn(features, label)


def best_cutoffs(labels: Sequence[str], scores: np.ndarray) -> tuple[float, float, bool, float]:
    """(ham_cutoff, spam_cutoff, neutral_unsure, cost) with the lowest cost on these scores.

    Ties go to the narrower band, then to no neutral rule: the rule is kept only where it pays.
    """
    is_spam = np.array([label == "spam" for label in labels])
    scores = np.asarray(scores, dtype=np.float64)
    candidates = [
        (_cost(is_spam, scores, h, s, n), s - h, n, h, s)
        for h, s, n in product(HAM_CUTOFFS, SPAM_CUTOFFS, (False, True))
        if h < s
    ]
    cost, _, neutral_unsure, ham_cutoff, spam_cutoff = min(candidates)
    return ham_cutoff, spam_cutoff, neutral_unsure, cost


def _cost(
    is_spam: np.ndarray, scores: np.ndarray, ham_cutoff: float, spam_cutoff: float, neutral_unsure: bool
) -> float:
    neutral = (scores == NEUTRAL) & neutral_unsure
    spam_verdict, ham_verdict = (scores >= spam_cutoff) & ~neutral, (scores <= ham_cutoff) & ~neutral
    fp = np.sum(spam_verdict & ~is_spam)
    fn = np.sum(ham_verdict & is_spam)
    unsure = np.sum(~spam_verdict & ~ham_verdict)
    return float(COST_FP * fp + COST_FN * fn + COST_UNSURE * unsure)
