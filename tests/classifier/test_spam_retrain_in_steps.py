"""Retraining while mail and agents keep writing (`retrain_in_steps`, what the web view runs): no
transaction is held while it cross-validates, labels learned meanwhile are kept on top of the new
version, an erasure's forgetting in between makes it start again, and the version keeps the
cross-validated ROC curve and score histogram the spam page draws."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from classifier import ledger, versions
from classifier.filter import SpamFilter
from classifier.forgetting import forget
from classifier.live import LiveModel
from classifier.model import CountModel
from models import SpamEvent
from models.db import Database
from spam_helpers import ham, spam


@pytest.fixture
def db(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url, busy_timeout=1.0)  # a transaction held across the retrain would show
    db.migrate()
    yield db
    db.dispose()


def _teach(db: Database, spam_filter: SpamFilter, n: int = 12) -> None:
    with db.write() as session:
        for i in range(n):
            ledger.learn(session, f"raw:ham{i}", "ham", spam_filter.features(ham(i)), "bootstrap")
            ledger.learn(session, f"raw:spam{i}", "spam", spam_filter.features(spam(i)), "bootstrap")


def _counts(model: CountModel) -> tuple:
    return model.n_ham, model.n_spam, model.ham_counts.sum(), model.spam_counts.sum()


def test_labels_learned_while_it_cross_validates_are_kept_on_top_of_the_new_version(settings, db, monkeypatch):
    spam_filter = SpamFilter()
    _teach(db, spam_filter)
    real, steps = versions.evaluate_examples, []

    def meanwhile(*args, **kw):
        with db.write() as session:  # would time out after 1 s if the retrain held the database
            ledger.learn(session, "raw:late", "spam", spam_filter.features(spam(99)), "agent")
        return real(*args, **kw)

    monkeypatch.setattr(versions, "evaluate_examples", meanwhile)
    version = versions.retrain_in_steps(
        db, settings.spam_dir, spam_filter, "steps", progress=lambda step, done: steps.append(done)
    )
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps) and len(steps) >= 12  # a step per fold
    with db.read() as session:
        late = session.scalar(select(SpamEvent.id).where(SpamEvent.key == "raw:late"))
        assert version.active and version.last_event_id < late
        assert version.figures["ham"] == 12 and version.figures["spam"] == 12
        live = LiveModel(settings.spam_dir, ham_cutoff=0.2, spam_cutoff=0.99, max_tokens=5000)
        live.refresh(session)
        everything, _ = versions.model_from_ledger(session, spam_filter.model.n_features)
    assert live.version_id == version.id and _counts(live.filter.model) == _counts(everything)


def test_an_erasure_in_between_makes_it_start_again_without_the_forgotten_message(settings, db, monkeypatch):
    spam_filter = SpamFilter()
    _teach(db, spam_filter)
    real, calls = versions.evaluate_examples, []

    def erased_once(*args, **kw):
        calls.append(len(args[0]))
        if len(calls) == 1:
            with db.write() as session:
                forget(session, settings.spam_dir, ["raw:spam0"])
        return real(*args, **kw)

    monkeypatch.setattr(versions, "evaluate_examples", erased_once)
    version = versions.retrain_in_steps(db, settings.spam_dir, spam_filter)
    assert calls == [24, 23]
    saved = CountModel.load(settings.spam_dir / version.path)
    with db.read() as session:
        remaining, _ = versions.model_from_ledger(session, spam_filter.model.n_features)
    assert _counts(saved) == _counts(remaining) and saved.n_spam == 11


def test_erasures_that_never_stop_end_it_with_a_clear_error(settings, db, monkeypatch):
    spam_filter = SpamFilter()
    _teach(db, spam_filter)
    real, keys = versions.evaluate_examples, iter(range(12))

    def erased_every_time(*args, **kw):
        with db.write() as session:
            forget(session, settings.spam_dir, [f"raw:ham{next(keys)}"])
        return real(*args, **kw)

    monkeypatch.setattr(versions, "evaluate_examples", erased_every_time)
    with pytest.raises(versions.LedgerChanged, match="start it again"):
        versions.retrain_in_steps(db, settings.spam_dir, spam_filter)
    with db.read() as session:
        assert versions.versions(session) == []


def test_the_version_keeps_its_cross_validated_roc_curve_and_score_histogram(settings, db):
    spam_filter = SpamFilter()
    _teach(db, spam_filter)
    version = versions.retrain_in_steps(db, settings.spam_dir, spam_filter)
    curves = version.figures["curves"]
    assert curves["roc"][0] == [0.0, 0.0] and curves["roc"][-1] == [1.0, 1.0]
    assert all(0 <= f <= 1 and 0 <= t <= 1 for f, t in curves["roc"])
    assert [f for f, _ in curves["roc"]] == sorted(f for f, _ in curves["roc"])
    histogram = curves["histogram"]
    assert histogram["bins"] == 20 and sum(histogram["ham"]) == 12 and sum(histogram["spam"]) == 12
