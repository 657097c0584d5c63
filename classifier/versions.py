"""Model versions: snapshots of the counts that admins make (train, retrain), list, and activate.

A version covers the events up to its `last_event_id`; the live model is the active version plus
the events after it. Activating an older version therefore replays every label learned since,
and no agent's decision is lost by a rollback. Snapshots are `.npz` arrays plus `.json` metadata.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.filter import SpamFilter
from classifier.ledger import last_event_id, serialise_writers
from classifier.model import CountModel
from models import SpamLabel, SpamModelVersion


def model_from_ledger(session: Session, n_features: int) -> tuple[CountModel, list[tuple[Features, str]]]:
    """Counts rebuilt from every ledger row (the features kept there, not a fresh tokenizing)."""
    model = CountModel(n_features)
    examples = []
    for label, data in session.execute(select(SpamLabel.label, SpamLabel.features).order_by(SpamLabel.id)):
        features = Features.from_bytes(data)
        model.learn(features, label)
        examples.append((features, label))
    return model, examples


def evaluate_examples(examples: list[tuple[Features, str]], cutoffs: SpamFilter, k: int = 10) -> dict:
    """K-fold cross-validation figures of a ledger, for the version's record."""
    from classifier.evaluate import cross_validate, figures  # scikit-learn takes seconds to import

    if min(sum(1 for _, lab in examples if lab == c) for c in ("ham", "spam")) < k:
        return {}

    def fit(train):
        model = CountModel(cutoffs.model.n_features)
        for features, label, _ in train:
            model.learn(features, label)
        return lambda features: _judged(model, features, cutoffs)

    outcomes = cross_validate([(f, lab, 0.0) for f, lab in examples], fit, k=k)
    result = figures(outcomes)
    return {"folds": k, "fp_rate": result.fp_rate, "fn_rate": result.fn_rate, "fp": result.fp, "fn": result.fn,
            "unsure": result.unsure, "one_minus_roca": result.one_minus_roca,
            "ham": result.n_ham, "spam": result.n_spam}


def _judged(model: CountModel, features: Features, cutoffs: SpamFilter) -> tuple[float, str]:
    score = model.score(features).probability
    return score, cutoffs.label_for(score)


def snapshot(session: Session, spam_dir: Path, model: CountModel, last_event: int, figures_: dict,
             note: str, activate: bool = True) -> SpamModelVersion:
    version = SpamModelVersion(path="", last_event_id=last_event, figures=figures_, note=note)
    session.add(version)
    session.flush()
    version.path = f"v{version.id:05d}-{int(time.time())}"
    spam_dir.mkdir(parents=True, exist_ok=True)
    model.save(spam_dir / version.path)
    if activate:
        activate_version(session, version.id)
    return version


def activate_version(session: Session, version_id: int) -> SpamModelVersion:
    version = session.get(SpamModelVersion, version_id)
    if version is None:
        raise LookupError(f"no spam model version {version_id}")
    session.execute(update(SpamModelVersion).values(active=False))
    version.active = True
    return version


def retrain(session: Session, spam_dir: Path, cutoffs: SpamFilter, note: str = "retrain",
            progress: Callable[[str], None] = lambda _: None) -> SpamModelVersion:
    """A new active version rebuilt from the ledger, with its cross-validation figures."""
    serialise_writers(session)  # the ledger and the event id must describe the same moment
    last = last_event_id(session)
    progress("rebuilding counts from the ledger")
    model, examples = model_from_ledger(session, cutoffs.model.n_features)
    progress(f"cross-validating {len(examples)} labelled messages")
    return snapshot(session, spam_dir, model, last, evaluate_examples(examples, cutoffs), note)


def versions(session: Session) -> list[SpamModelVersion]:
    return list(session.scalars(select(SpamModelVersion).order_by(SpamModelVersion.id)))
