"""The façade the pipeline and the web view call: message in, verdict with readable evidence out.

`SpamFilter` ties the tokenizer, the feature hashing and the count model together and applies the
cutoffs. Learning takes a message or the `Features` a ledger kept, so a correction or an erasure
can unlearn exactly what was learned.

Cutoffs: ham at or below 0.20 (SpamBayes'), spam at or above 0.95 (SpamAssassin's BAYES_95),
chosen among published candidates by the drift protocols (d) and (e) of
bench/results/spam_accuracy.md, which says why. A score of exactly 0.5 is chi-square's "no
evidence" and is never a decision (NEUTRAL_UNSURE), whatever the cutoffs.
"""

from __future__ import annotations

from dataclasses import dataclass

from classifier.features import DEFAULT_N_FEATURES, Features, featurize
from classifier.model import CountModel, ScoringParams
from classifier.tokenize import tokens
from models.mail.message import ParsedMessage
from models.settings import HAM_CUTOFF, SPAM_CUTOFF

EVIDENCE_SHOWN = 15
NEUTRAL = 0.5  # chi-square's "no idea": no clues, or clues that cancel exactly
NEUTRAL_UNSURE = True  # a priori: exactly NEUTRAL is never a decision


def label_by_cutoffs(score: float, ham_cutoff: float, spam_cutoff: float, neutral_unsure: bool = NEUTRAL_UNSURE) -> str:
    """spam at or above spam_cutoff, ham at or below ham_cutoff, else unsure.

    With `neutral_unsure`, a score of exactly 0.5 (no clues, or clues that cancel exactly) is unsure
    whatever the cutoffs.
    """
    if neutral_unsure and score == NEUTRAL:
        return "unsure"
    if score >= spam_cutoff:
        return "spam"
    return "ham" if score <= ham_cutoff else "unsure"


@dataclass(frozen=True)
class Verdict:
    """Score in [0, 1], label ham|unsure|spam|untrained, the strongest clues as "token (p)", and the
    share of the message the model has seen before (its evidence counts in that proportion)."""

    score: float
    label: str
    evidence: list[str]
    coverage: float = 0.0


class SpamFilter:
    """Tokenize, hash, score and decide; learn and unlearn messages or their stored features."""

    def __init__(
        self,
        model: CountModel | None = None,
        *,
        ham_cutoff: float = HAM_CUTOFF,
        spam_cutoff: float = SPAM_CUTOFF,
        max_tokens: int = 5000,
        neutral_unsure: bool = NEUTRAL_UNSURE,
    ) -> None:
        if not 0.0 <= ham_cutoff <= spam_cutoff <= 1.0:
            raise ValueError("cutoffs must satisfy 0 <= ham_cutoff <= spam_cutoff <= 1")
        self.model = model or CountModel(DEFAULT_N_FEATURES, ScoringParams())
        self.ham_cutoff = ham_cutoff
        self.spam_cutoff = spam_cutoff
        self.max_tokens = max_tokens
        self.neutral_unsure = neutral_unsure

    @property
    def trained(self) -> bool:
        return self.model.n_spam > 0 and self.model.n_ham > 0

    def features(self, msg: ParsedMessage) -> Features:
        """The message's hashed features, with the token behind each (keep `to_bytes()` to unlearn)."""
        return featurize(tokens(msg, self.max_tokens), self.model.n_features)

    def classify(self, msg: ParsedMessage | Features) -> Verdict:
        """Score the message; "untrained" until the model has seen both ham and spam."""
        features = msg if isinstance(msg, Features) else self.features(msg)
        if not self.trained:
            return Verdict(0.5, "untrained", [])
        result = self.model.score(features, evidence=EVIDENCE_SHOWN)
        shown = [f"{features.name(fid)} ({p:.2f})" for fid, p in result.evidence[:EVIDENCE_SHOWN]]
        return Verdict(result.probability, self.label_for(result.probability), shown, result.coverage)

    def label_for(self, score: float) -> str:
        return label_by_cutoffs(score, self.ham_cutoff, self.spam_cutoff, self.neutral_unsure)

    def learn(self, msg: ParsedMessage | Features, label: str) -> Features:
        """Learn a message (or stored features) as ham or spam; returns the features learned."""
        features = msg if isinstance(msg, Features) else self.features(msg)
        self.model.learn(features, label)
        return features

    def unlearn(self, msg: ParsedMessage | Features, label: str) -> Features:
        """Exactly undo `learn`; prefer the stored features, as the tokenizer may have changed."""
        features = msg if isinstance(msg, Features) else self.features(msg)
        self.model.unlearn(features, label)
        return features
