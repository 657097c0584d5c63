"""The façade: untrained verdicts, cutoffs, readable evidence, learning from stored features."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from classifier.features import Features, channel_start, feature_id, featurize
from classifier.filter import SpamFilter
from classifier.model import CountModel
from classifier.tokenize import tokens

from spam_helpers import ham, spam


def _small_filter() -> SpamFilter:
    return SpamFilter(CountModel(1 << 16))


def _trained() -> SpamFilter:
    spam_filter = _small_filter()
    for i in range(10):
        spam_filter.learn(spam(i), "spam")
        spam_filter.learn(ham(i), "ham")
    return spam_filter


def test_untrained_until_both_classes_seen():
    spam_filter = _small_filter()
    assert spam_filter.classify(spam()).label == "untrained"
    spam_filter.learn(spam(), "spam")
    assert spam_filter.classify(spam()).label == "untrained"


def test_classifies_and_shows_words_as_evidence():
    spam_filter = _trained()
    verdict = spam_filter.classify(spam(99))
    assert verdict.label == "spam" and verdict.score >= spam_filter.spam_cutoff
    shown = [e.rpartition(" (")[0] for e in verdict.evidence]
    assert len(shown) >= 5 and set(shown) <= set(tokens(spam(99)))  # the message's own words, never "#id"
    assert any(word in shown for word in ("viagra", "cheap", "buy", "limited", "offer", "click"))
    assert spam_filter.classify(ham(99)).label == "ham"


def test_unlearn_from_stored_bytes_is_exact():
    spam_filter = _trained()
    before = (spam_filter.model.spam_counts.copy(), spam_filter.classify(ham(5)).score)
    stored = spam_filter.learn(spam(42), "spam").to_bytes()
    spam_filter.unlearn(Features.from_bytes(stored), "spam")
    assert np.array_equal(spam_filter.model.spam_counts, before[0])
    assert spam_filter.classify(ham(5)).score == before[1]


def test_cutoffs_are_checked():
    with pytest.raises(ValueError):
        SpamFilter(ham_cutoff=0.9, spam_cutoff=0.2)


def test_features_are_sorted_distinct_and_named():
    features = featurize(["b", "a", "b", "c"], 1 << 22)
    assert list(features.ids) == sorted(set(features.ids)) and len(features.ids) == 3
    assert features.name(feature_id("a")) == "a"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=40), st.sampled_from([1 << 12, 1 << 16, 1 << 22]))
def test_channel_tokens_are_hashed_into_their_own_part_of_the_space(words, n_features):
    tokens_ = words + ["via:" + w for w in words]
    features = featurize(tokens_, n_features)
    start = channel_start(n_features)
    for token in dict.fromkeys(tokens_):
        fid = feature_id(token, n_features)
        assert fid in features.ids and (fid >= start) == token.startswith("via:") and 0 <= fid < n_features


def test_hash_is_stable_across_processes():
    code = "from classifier.features import feature_id; print(feature_id('from:domain:example.com'))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert runs == {f"{feature_id('from:domain:example.com')}\n"}


def test_neutral_score_is_not_decided_by_default_and_can_be():
    from classifier.filter import label_by_cutoffs

    assert label_by_cutoffs(0.5, 0.4, 0.5) == "unsure" and label_by_cutoffs(0.5, 0.5, 0.9) == "unsure"
    assert label_by_cutoffs(0.5000001, 0.4, 0.5) == "spam" and label_by_cutoffs(0.4, 0.4, 0.5) == "ham"
    assert label_by_cutoffs(0.5, 0.4, 0.5, neutral_unsure=False) == "spam"
    assert label_by_cutoffs(0.5, 0.5, 0.9, neutral_unsure=False) == "ham"
    assert SpamFilter(ham_cutoff=0.4, spam_cutoff=0.5, neutral_unsure=False).label_for(0.5) == "spam"
    assert SpamFilter(ham_cutoff=0.4, spam_cutoff=0.5).label_for(0.5) == "unsure"
