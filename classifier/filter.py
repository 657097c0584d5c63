"""The façade the pipeline and the web view call: message in, verdict with readable evidence out.

`SpamFilter` ties the tokenizer, the feature hashing and the count model together and applies the
cutoffs. Learning takes a message or the `Features` a ledger kept, so a correction or an erasure
can unlearn exactly what was learned.

Lab notebook (cutoffs): SpamBayes' 0.20 / 0.90 are the shipped defaults, with the ScoringParams
defaults (bogofilter's robs/robx/min_dev): the combination measured online in time order, as a new
Postdesk learns — 0 FP, 1 FN, 209 unsure of 3,000 (bogofilter's defaults 0 FP, 5 FN, 207 unsure).
Cutoffs tuned by inner CV for SpamBayes' costs (FP 10, FN 1, unsure 0.2) come out at 0.4 / 0.5 on a
model trained on thousands of messages: pass tuned cutoffs in once a deployment has measured its own.

Lab notebook (neutral rule): a score of exactly 0.5 is chi-square's neutral point — no clues at all,
or both tails underflowing (overwhelming clues both ways) — so by default it is never a decision
(NEUTRAL_UNSURE). That is an a-priori choice, not a measured one, and with the shipped cutoffs
0.20 / 0.90 it changes no verdict (0.5 lies between them); it matters only for cutoffs touching 0.5,
where `classifier.tune.tune` chooses it from inner folds with the cutoffs (`Choice.spam_filter`):
on all 3,000 corpus messages it picks 0.4 / 0.5 without the rule (inner cost 3.8 a run, 5.3 with it).
"""

from __future__ import annotations

from dataclasses import dataclass

from classifier.features import DEFAULT_N_FEATURES, Features, featurize
from classifier.model import CountModel, ScoringParams
from classifier.tokenize import tokens
from ingest.message import ParsedMessage

HAM_CUTOFF = 0.20
SPAM_CUTOFF = 0.90
EVIDENCE_SHOWN = 15
NEUTRAL = 0.5  # chi-square's "no idea": no clues, or strong clues both ways beyond double precision
NEUTRAL_UNSURE = True  # a priori (see the notebook above): exactly NEUTRAL is never a decision


def decide(score: float, ham_cutoff: float, spam_cutoff: float, neutral_unsure: bool = NEUTRAL_UNSURE) -> str:
    """spam at or above spam_cutoff, ham at or below ham_cutoff, else unsure.

    With `neutral_unsure`, a score of exactly 0.5 (no clues, or both chi-square tails underflowed)
    is unsure whatever the cutoffs.
    """
    if neutral_unsure and score == NEUTRAL:
        return "unsure"
    if score >= spam_cutoff:
        return "spam"
    return "ham" if score <= ham_cutoff else "unsure"


@dataclass(frozen=True)
class Verdict:
    """Score in [0, 1], label ham|unsure|spam|untrained, and the strongest clues as "token (p)"."""

    score: float
    label: str
    evidence: list[str]


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
        return Verdict(result.probability, self.label_for(result.probability), shown)

    def label_for(self, score: float) -> str:
        return decide(score, self.ham_cutoff, self.spam_cutoff, self.neutral_unsure)

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
