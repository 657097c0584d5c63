"""Tuning inside a training set: the neutral rule (exactly 0.5 is unsure) is kept only where inner folds pay for it."""

from __future__ import annotations

from classifier.features import featurize
from classifier.tune import tune

N_FEATURES = 1 << 12


def _example(tokens: list[str], label: str):
    return featurize(tokens, N_FEATURES), label, 0.0


def _training(no_clue_ham: int) -> list:
    """Clear ham and spam, 4 spam scoring just above 0.5 out of fold, and ham whose words nothing else has (0.5)."""
    train = [_example(["hamword", f"hw{i % 4}", f"h{i}"], "ham") for i in range(40)]
    train += [_example(["spamword", f"s{i}"], "spam") for i in range(20)]
    train += [_example(["spamword", f"hw{j}", f"w{j}"], "spam") for j in range(4)]  # a spammy and a hammy clue
    return train + [_example([f"odd{i}"], "ham") for i in range(no_clue_ham)]


def _no_clue_verdict(train: list) -> tuple[bool, str]:
    """Tune on `train`, learn it, and judge a message with no known word (score exactly 0.5)."""
    choice = tune(train, n_features=N_FEATURES)
    spam_filter = choice.spam_filter(N_FEATURES)
    for features, label, _ in train:
        spam_filter.learn(features, label)
    verdict = spam_filter.classify(featurize(["never-seen"], N_FEATURES))
    assert verdict.score == 0.5 and choice.spam_cutoff == 0.5  # the weak spam are worth catching either way
    return choice.neutral_unsure, verdict.label


def test_inner_folds_choose_the_neutral_rule_when_a_ham_scores_exactly_half():
    # Without the rule, catching the weak spam at cutoff 0.5 would call the no-clue ham spam (cost 10).
    assert _no_clue_verdict(_training(no_clue_ham=1)) == (True, "unsure")


def test_without_such_ham_the_rule_is_not_chosen():
    # Nothing scores exactly 0.5 in the inner folds: the rule changes no cost, and ties go to no rule.
    assert _no_clue_verdict(_training(no_clue_ham=0)) == (False, "spam")
