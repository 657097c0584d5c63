"""The count model: exact unlearning, BernoulliNB's formula, chi-square scoring, save/load without pickle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.naive_bayes import BernoulliNB

from classifier.features import channel_start
from classifier.model import CountModel, ModelError, ScoringParams, chi2_combine, tipped, weighted

N = 1 << 12
feature_sets = st.lists(st.integers(0, N - 1), min_size=0, max_size=60).map(
    lambda xs: np.unique(np.array(xs, dtype=np.int64))
)
labelled = st.lists(st.tuples(feature_sets, st.sampled_from(["ham", "spam"])), min_size=1, max_size=12)


def _trained(examples) -> CountModel:
    model = CountModel(N)
    for features, label in examples:
        model.learn(features, label)
    return model


@settings(max_examples=60, deadline=None)
@given(labelled, labelled, st.lists(feature_sets, min_size=1, max_size=5))
def test_learn_then_unlearn_equals_never_learned(kept, removed, probes):
    model = _trained(kept + removed)
    for features, label in removed:
        model.unlearn(features, label)
    alone = _trained(kept)
    assert np.array_equal(model.spam_counts, alone.spam_counts) and np.array_equal(model.ham_counts, alone.ham_counts)
    assert (model.n_spam, model.n_ham) == (alone.n_spam, alone.n_ham)
    assert [model.score(p) for p in probes] == [alone.score(p) for p in probes]


def test_unlearning_what_was_never_learned_raises_and_changes_nothing():
    model = _trained([(np.array([1, 2]), "spam")])
    with pytest.raises(ModelError):
        model.unlearn(np.array([1, 3]), "spam")
    with pytest.raises(ModelError):
        model.unlearn(np.array([1]), "ham")
    assert model.spam_counts[[1, 2, 3]].tolist() == [1, 1, 0] and model.n_spam == 1


def test_unknown_label_raises():
    with pytest.raises(ModelError):
        CountModel(N).learn(np.array([1]), "eggs")


def test_without_prior_messages_class_probabilities_are_bernoulli_nb_formula():
    rng = np.random.default_rng(1)
    x = (rng.random((40, 30)) < 0.3).astype(np.int64)
    y = np.array(["ham"] * 25 + ["spam"] * 15)
    model = CountModel(30, ScoringParams(alpha=0.5, s=0.0, prior_messages=0.0))
    for row, label in zip(x, y, strict=True):
        model.learn(np.flatnonzero(row), label)
    nb = BernoulliNB(alpha=0.5, force_alpha=True).fit(x, y)
    p_ham, p_spam = np.exp(nb.feature_log_prob_)
    expected = p_spam / (p_spam + p_ham)
    seen = (model.spam_counts + model.ham_counts) > 0
    ids = np.arange(30)[seen]
    assert np.allclose(model.feature_probabilities(ids, model.params), expected[seen])


def test_scores_separate_and_evidence_is_strongest_first():
    model = _trained([(np.array([1, 2, 3]), "spam")] * 5 + [(np.array([7, 8, 9]), "ham")] * 5)
    spammy, hammy = model.score(np.array([1, 2, 3])), model.score(np.array([7, 8, 9]))
    assert spammy.probability > 0.9 and hammy.probability < 0.1
    assert {f for f, _ in spammy.evidence} == {1, 2, 3}
    assert model.score(np.array([100, 200])).probability == 0.5  # nothing known: no clues


@settings(max_examples=100, deadline=None)
@given(labelled, st.floats(0.0, 20.0))
def test_prior_messages_only_pull_a_clue_towards_neutral(examples, m):
    model = _trained(examples)
    ids = np.unique(np.concatenate([f for f, _ in examples] + [np.array([0], dtype=np.int64)]))
    plain = model.feature_probabilities(ids, ScoringParams(prior_messages=0.0)) - 0.5
    pulled = model.feature_probabilities(ids, ScoringParams(prior_messages=m)) - 0.5
    assert np.all(np.abs(pulled) <= np.abs(plain) + 1e-12) and np.all(pulled * plain >= -1e-12)


def test_one_spam_and_one_ham_do_not_make_their_words_certain():
    model = _trained([(np.array([1, 2, 3]), "spam"), (np.array([7, 8, 9]), "ham")])
    first = model.feature_probabilities(np.array([1, 7]), model.params)
    assert 0.5 < first[0] < 0.8 and 0.2 < first[1] < 0.5  # a hapax is a clue, not a certainty


def test_when_both_tails_underflow_the_score_keeps_the_side_of_the_stronger_one():
    hammy, spammy = np.full(300, 1e-3), np.full(300, 1 - 1e-3)
    leaning_ham = chi2_combine(np.concatenate([np.full(301, 1e-3), spammy]))
    leaning_spam = chi2_combine(np.concatenate([hammy, np.full(301, 1 - 1e-3)]))
    assert leaning_ham < 0.5 < leaning_spam and leaning_spam - leaning_ham < 1e-15


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.0, 10.0))
def test_the_channel_moves_the_body_odds_at_most_by_its_limit(body, channel, limit):
    score = tipped(body, channel, limit)
    assert 0.0 <= score <= 1.0
    assert (score >= body - 1e-15) if channel >= 0.5 else (score <= body + 1e-15)  # towards the channel
    if 1e-9 < body < 1 - 1e-9:
        odds, body_odds = score / (1 - score), body / (1 - body)
        assert body_odds / limit * (1 - 1e-6) <= odds <= body_odds * limit * (1 + 1e-6)
    if body in (0.0, 1.0) or channel == 0.5:
        assert score == body  # a certain body stays certain; a neutral channel changes nothing


def test_list_and_relay_clues_cannot_outvote_the_body():
    model = CountModel(N)
    via = channel_start(N)  # the channel's part of the space
    for _ in range(30):
        model.learn(np.array([1, 2, 3, via + 1, via + 2]), "ham")  # a list that carried only ham
        model.learn(np.array([4, 5, 6, via + 9]), "spam")
    spam_on_the_list = model.score(np.array([4, 5, 6, via + 1, via + 2])).probability
    body_alone = model.score(np.array([4, 5, 6])).probability
    assert body_alone > 0.99 and spam_on_the_list > 0.9  # still spam: the list only lowers the odds
    assert (
        body_alone / (1 - body_alone) / (spam_on_the_list / (1 - spam_on_the_list))
        <= model.params.channel_odds * 1.000001
    )


def test_a_message_of_mostly_new_words_is_scored_less_surely_on_the_same_side():
    model = CountModel(N)
    for _ in range(20):
        model.learn(np.array([1, 2, 3]), "ham")
        model.learn(np.array([4, 5, 6]), "spam")
    familiar = model.score(np.array([4, 5, 6])).probability
    mostly_new = model.score(np.array([4, 5, 6, *range(100, 112)])).probability  # the same clues, 12 new words
    assert 0.5 < mostly_new < familiar
    hammy = model.score(np.array([1, 2, *range(100, 112)])).probability
    assert model.score(np.array([1, 2])).probability < hammy < 0.5
    off = CountModel(N, ScoringParams(coverage_power=0.0))
    off.spam_counts, off.ham_counts, off.n_spam, off.n_ham = model.spam_counts, model.ham_counts, 20, 20
    assert off.score(np.array([4, 5, 6, *range(100, 112)])).probability == familiar  # step 5 off


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_weighting_keeps_the_side_and_the_order_and_only_moves_towards_one_half(a, b, w, v):
    for score in (a, b):
        assert 0.0 <= weighted(score, w) <= 1.0
        assert (weighted(score, w) - 0.5) * (score - 0.5) >= 0.0  # never crosses 0.5
        assert abs(weighted(score, w) - 0.5) <= abs(score - 0.5) + 1e-15
    assert weighted(a, 1.0) == a and weighted(0.5, w) == 0.5
    if a < b:
        assert weighted(a, w) <= weighted(b, w)  # one weight keeps the order
    if 1e-12 < a < 0.5 and w < v:
        assert weighted(a, w) >= weighted(a, v)  # less known, less sure


def test_chi2_combine_is_symmetric_and_bounded():
    p = np.array([0.99, 0.98, 0.2])
    assert 0.0 <= chi2_combine(p) <= 1.0
    assert chi2_combine(p) == pytest.approx(1.0 - chi2_combine(1.0 - p))
    assert chi2_combine(np.array([])) == 0.5


def test_save_load_round_trip_without_pickle(tmp_path):
    model = _trained([(np.array([1, 2]), "spam"), (np.array([2, 3]), "ham")])
    model.params = ScoringParams(s=0.2, min_dist=0.3)
    model.save(tmp_path / "model")
    loaded = CountModel.load(tmp_path / "model")
    assert np.array_equal(loaded.spam_counts, model.spam_counts) and np.array_equal(loaded.ham_counts, model.ham_counts)
    assert (loaded.n_spam, loaded.n_ham, loaded.params) == (model.n_spam, model.n_ham, model.params)
    assert loaded.score(np.array([1, 3])) == model.score(np.array([1, 3]))
    with zipfile.ZipFile(tmp_path / "model.npz") as archive:
        assert sorted(archive.namelist()) == ["ham_counts.npy", "spam_counts.npy"]
        for name in archive.namelist():
            assert b"pickle" not in archive.read(name)[:128] and b"|O" not in archive.read(name)[:128]
    assert json.loads((tmp_path / "model.json").read_text())["n_spam"] == 1


def test_load_refuses_a_pickled_array(tmp_path):
    _trained([(np.array([1]), "spam")]).save(tmp_path / "m")
    np.savez(tmp_path / "m.npz", spam_counts=np.array([object()] * N, dtype=object), ham_counts=np.zeros(N, np.int32))
    with pytest.raises(ValueError):
        CountModel.load(tmp_path / "m")


def test_a_model_saved_in_an_older_format_is_refused_with_a_clear_error(tmp_path):
    _trained([(np.array([1]), "spam")]).save(tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(ModelError, match="retrain"):
        CountModel.load(tmp_path / "m")


def test_model_memory_within_budget():
    assert CountModel().nbytes <= 64 * 1024 * 1024
