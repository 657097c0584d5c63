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
from classifier.forgetting import RELOAD
from classifier.ledger import last_event_id, serialise_writers
from classifier.model import CountModel
from models import SpamEvent, SpamLabel, SpamModelVersion
from models.db import Database


def model_from_ledger(session: Session, n_features: int) -> tuple[CountModel, list[tuple[Features, str]]]:
    """Counts rebuilt from every ledger row (the features kept there, not a fresh tokenizing)."""
    return model_from_rows(_ledger_rows(session), n_features)


def _ledger_rows(session: Session) -> list[tuple[str, bytes]]:
    return [tuple(r) for r in session.execute(select(SpamLabel.label, SpamLabel.features).order_by(SpamLabel.id))]


def model_from_rows(rows: list[tuple[str, bytes]], n_features: int) -> tuple[CountModel, list[tuple[Features, str]]]:
    model = CountModel(n_features)
    examples = []
    for label, data in rows:
        features = Features.from_bytes(data)
        model.learn(features, label)
        examples.append((features, label))
    return model, examples


def evaluate_examples(
    examples: list[tuple[Features, str]],
    cutoffs: SpamFilter,
    k: int = 10,
    on_fold: Callable[[int, int], None] = lambda done, k: None,
) -> dict:
    """K-fold cross-validation figures of a ledger, for the version's record; under "curves" the
    ROC curve and the score histogram of the cross-validated scores, which the spam page draws."""
    from classifier.evaluate import cross_validate, figures, roc_points, score_histogram  # scikit-learn: seconds

    if min(sum(1 for _, lab in examples if lab == c) for c in ("ham", "spam")) < k:
        return {}

    def fit(train):
        model = CountModel(cutoffs.model.n_features)
        for features, label, _ in train:
            model.learn(features, label)
        return lambda features: _judged(model, features, cutoffs)

    outcomes = cross_validate([(f, lab, 0.0) for f, lab in examples], fit, k=k, on_fold=on_fold)
    result = figures(outcomes)
    return {
        "folds": k,
        "fp_rate": result.fp_rate,
        "fn_rate": result.fn_rate,
        "fp": result.fp,
        "fn": result.fn,
        "unsure": result.unsure,
        "one_minus_roca": result.one_minus_roca,
        "ham": result.n_ham,
        "spam": result.n_spam,
        "curves": {"roc": roc_points(outcomes), "histogram": score_histogram(outcomes)},
    }


def _judged(model: CountModel, features: Features, cutoffs: SpamFilter) -> tuple[float, str]:
    score = model.score(features).probability
    return score, cutoffs.label_for(score)


def snapshot(
    session: Session,
    spam_dir: Path,
    model: CountModel,
    last_event: int,
    figures_: dict,
    note: str,
    activate: bool = True,
) -> SpamModelVersion:
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


def gather(session: Session) -> tuple[list[tuple[str, bytes]], int]:
    """The ledger's rows, and the last event id they cover (one consistent moment)."""
    serialise_writers(session)  # the ledger and the event id must describe the same moment
    return _ledger_rows(session), last_event_id(session)


def retrain(
    session: Session,
    spam_dir: Path,
    cutoffs: SpamFilter,
    note: str = "retrain",
    progress: Callable[[str], None] = lambda _: None,
) -> SpamModelVersion:
    """A new active version rebuilt from the ledger, with its cross-validation figures, in one transaction."""
    progress("rebuilding counts from the ledger")
    rows, last = gather(session)
    model, examples = model_from_rows(rows, cutoffs.model.n_features)
    progress(f"cross-validating {len(examples)} labelled messages")
    return snapshot(session, spam_dir, model, last, evaluate_examples(examples, cutoffs), note)


_ATTEMPTS = 3


class LedgerChanged(Exception):
    """An erasure forgot learned messages while a retrain was cross-validating: it must start again."""


def retrain_in_steps(
    db: Database,
    spam_dir: Path,
    cutoffs: SpamFilter,
    note: str = "retrain",
    progress: Callable[[str, float], None] = lambda what, done: None,
    on_saved: Callable[[Session, SpamModelVersion], None] = lambda session, version: None,
) -> SpamModelVersion:
    """`retrain` for a server: the slow cross-validation runs outside any transaction, so the
    runner and the agents keep writing meanwhile (labels learned then are events after the
    version's `last_event_id`, replayed on top of it). Only an erasure's forgetting in between
    spoils the counts gathered (they would keep what it removed): then this starts again, at most
    `_ATTEMPTS` times, and raises LedgerChanged after that. `on_saved` runs in the transaction
    that saves the version (an audit record, say)."""
    for _ in range(_ATTEMPTS):
        progress("reading the ledger", 0.0)
        with db.write() as session:  # only the reading: the counts are built after it
            rows, last = gather(session)
        model, examples = model_from_rows(rows, cutoffs.model.n_features)
        progress(f"cross-validating {len(examples)} labelled messages", 0.05)
        figures_ = evaluate_examples(
            examples,
            cutoffs,
            on_fold=lambda done, k: progress(f"cross-validated {done} of {k} folds", 0.05 + 0.85 * done / k),
        )
        progress("saving the new version", 0.95)
        with db.write() as session:
            serialise_writers(session)
            if forgotten_since(session, last):
                continue
            version = snapshot(session, spam_dir, model, last, figures_, note)
            on_saved(session, version)
        progress("done", 1.0)
        return version
    raise LedgerChanged("erasures kept changing the ledger during the retrain; start it again")


def forgotten_since(session: Session, event_id: int) -> bool:
    """Whether an erasure forgot learned messages after `event_id` (its reload event is later)."""
    return bool(session.scalar(select(SpamEvent.id).where(SpamEvent.key == RELOAD, SpamEvent.id > event_id).limit(1)))


def versions(session: Session) -> list[SpamModelVersion]:
    return list(session.scalars(select(SpamModelVersion).order_by(SpamModelVersion.id)))
