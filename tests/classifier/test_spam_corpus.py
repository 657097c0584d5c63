"""On a slice of the real corpus, parsed by models.mail.parse: the filter learns and separates (needs the corpus)."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from classifier.evaluate import figures, online
from classifier.filter import SpamFilter
from models.mail.parse import parse, strip_mbox_from

pytestmark = pytest.mark.corpus


class _Learner:
    def __init__(self) -> None:
        self.filter = SpamFilter()

    def judge(self, features):
        verdict = self.filter.classify(features)
        return verdict.score, verdict.label

    def learn(self, features, label):
        self.filter.learn(features, label)


def test_online_on_a_slice_of_the_corpus(corpus_dir):
    spam_filter = SpamFilter()
    examples = []
    for label in ("ham", "spam"):
        for i, path in enumerate(sorted((corpus_dir / label).iterdir())[::10]):
            msg = parse(strip_mbox_from(path.read_bytes()), received_at=datetime(2002, 12, 31, tzinfo=UTC))
            examples.append((spam_filter.features(msg), label, float(i)))
    result = figures(online(examples, _Learner()))
    assert result.one_minus_roca < 2.0
    assert result.fp <= 2
