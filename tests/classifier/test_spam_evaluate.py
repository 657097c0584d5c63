"""Metrics and protocols on toy data: FP/FN among decided, unsure apart, 1-ROCA with ties half."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from classifier.evaluate import (
    Outcome,
    cross_validate,
    figures,
    message_time,
    one_minus_roca,
    online,
    source_shift,
    time_split,
)
from classifier.tune import best_cutoffs

from spam_helpers import message


def test_figures_count_decided_and_unsure_apart():
    outcomes = [
        Outcome("ham", 0.1, "ham"),
        Outcome("ham", 0.95, "spam"),
        Outcome("ham", 0.5, "unsure"),
        Outcome("spam", 0.99, "spam"),
        Outcome("spam", 0.05, "ham"),
        Outcome("spam", 0.5, "untrained"),
    ]
    f = figures(outcomes)
    assert (f.fp, f.fn, f.unsure_ham, f.unsure_spam) == (1, 1, 1, 1)
    assert f.fp_rate == pytest.approx(50.0) and f.fn_rate == pytest.approx(50.0)


def test_one_minus_roca_counts_ties_half():
    assert one_minus_roca(["ham", "spam"], [0.1, 0.9]) == 0.0
    assert one_minus_roca(["ham", "spam"], [0.9, 0.1]) == 100.0
    assert one_minus_roca(["ham", "spam"], [0.5, 0.5]) == 50.0


class _Threshold:
    """A toy filter whose features are numbers: spam when above 0.5."""

    def __init__(self) -> None:
        self.learned = []

    def judge(self, x):
        return x, "spam" if x > 0.5 else "ham"

    def learn(self, x, label):
        self.learned.append(label)


def _examples():
    return [(0.1 * (i % 5), "ham", float(i)) for i in range(20)] + [(0.9, "spam", float(i) + 0.5) for i in range(5)]


def test_protocols_judge_every_test_message_once():
    assert len(cross_validate(_examples(), lambda train: _Threshold().judge, k=5)) == 25
    assert len(time_split(_examples(), lambda train: _Threshold().judge)) == 7  # 25 × 0.3, rounded
    learner = _Threshold()
    assert figures(online(_examples(), learner)).one_minus_roca == 0.0 and len(learner.learned) == 25


def test_source_shift_holds_out_each_of_the_largest_sources_in_turn():
    examples = [(i, "ham" if i % 3 else "spam", float(i)) for i in range(30)]
    sources = ["big"] * 12 + ["middle"] * 9 + ["small"] * 6 + ["tiny"] * 3
    trained_on = {}

    def fit(train):
        seen = {sources[i] for i, _, _ in train}
        return lambda i: (trained_on.setdefault(sources[i], seen) and 0.5, "unsure")

    judged = source_shift(examples, sources, fit, n_sources=3)
    assert list(judged) == ["big", "middle", "small"]  # the largest first; "tiny" is never held out
    assert [len(out) for out in judged.values()] == [12, 9, 6]
    assert all(source not in trained_on[source] for source in judged)
    assert trained_on["big"] == {"middle", "small", "tiny"}


def test_time_split_trains_on_the_earliest():
    seen = []
    time_split(
        [(i, "ham", 10.0 - i) for i in range(10)],
        lambda train: seen.extend(f for f, _, _ in train) or _Threshold().judge,
    )
    assert sorted(seen) == [3, 4, 5, 6, 7, 8, 9]


def test_message_time_falls_back_to_first_received_when_date_lies():
    received = "from a by b; Thu, 22 Aug 2002 08:17:21 -0400"
    lying = message("x", date=datetime(2035, 1, 1, tzinfo=UTC), headers=[("received", received)])
    assert datetime.fromtimestamp(message_time(lying), UTC).year == 2002
    honest = message("x", date=datetime(2002, 8, 22, 12, 0, tzinfo=UTC), headers=[("received", received)])
    assert message_time(honest) == datetime(2002, 8, 22, 12, 0, tzinfo=UTC).timestamp()


def test_best_cutoffs_avoid_false_positives():
    import numpy as np

    labels = ["ham"] * 10 + ["spam"] * 10
    scores = np.array([0.05] * 9 + [0.85] + [0.95] * 10)
    ham_cutoff, spam_cutoff, _, _ = best_cutoffs(labels, scores)
    assert spam_cutoff > 0.85 >= ham_cutoff or ham_cutoff >= 0.85


def test_the_roc_points_are_thinned_to_at_most_the_number_asked_keeping_both_ends():
    from classifier.evaluate import Outcome, roc_points, score_histogram

    outcomes = [Outcome("ham", i / 1000, "unsure") for i in range(500)] + [
        Outcome("spam", 0.25 + i / 1000, "unsure") for i in range(500)
    ]
    points = roc_points(outcomes, most=50)
    assert len(points) <= 50 and points[0] == [0.0, 0.0] and points[-1] == [1.0, 1.0]
    assert roc_points([o for o in outcomes if o.label == "ham"]) == []  # one class: no curve
    histogram = score_histogram(outcomes, bins=4)
    assert histogram == {"bins": 4, "ham": [250, 250, 0, 0], "spam": [0, 250, 250, 0]}
