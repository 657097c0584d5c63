"""The pipeline's spam stage: the live model's verdict, overridden by sender rules and answered contacts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.live import LiveModel
from classifier.senders import all_rules, configured, match
from models import Contact
from models.base import table
from models.mail.message import ParsedMessage

QUEUE_OF = {"spam": "spam", "unsure": "review"}


@dataclass(frozen=True)
class Judgement:
    score: float
    label: str  # ham | unsure | spam | untrained
    evidence: list[str]
    reason: str  # model | allow-list | block-list | answered-contact
    version: int | None

    @property
    def queue(self) -> str:
        return QUEUE_OF.get(self.label, "inbox")


class SpamJudge:
    def __init__(self, live: LiveModel, allow: list[str], block: list[str]):
        self.live = live
        self.allow, self.block = allow, block
        self._configured: dict[str, str] | None = None  # normalised on first use, as rule_for did
        self._rules: dict[str, str] = {}
        self._refreshed_for: Session | None = None

    @property
    def n_features(self) -> int:
        """The feature space of the model in use (features made for another one are made again)."""
        return self.live.filter.model.n_features

    def judge(self, session: Session, msg: ParsedMessage, sender: str, features: Features | None = None) -> Judgement:
        """The verdict on `msg`; `features` are its tokens hashed ahead of time (`ingest.prepare`)."""
        if session is not self._refreshed_for:  # one refresh per runner transaction, i.e. per batch
            self.live.refresh(session)
            self._rules = all_rules(session)  # one query per batch instead of one per message
            self._refreshed_for = session
        if features is None or features.n_features != self.n_features:
            features = self.live.filter.features(msg)
        verdict = self.live.filter.classify(features)
        version = self.live.version_id
        rule = match(sender, self._rules, self._configured_rules()) if sender else None
        if rule is not None:
            label = "ham" if rule == "allow" else "spam"
            return Judgement(verdict.score, label, verdict.evidence, f"{rule}-list", version)
        if verdict.label == "spam" and _answered(session, sender):
            return Judgement(verdict.score, "unsure", verdict.evidence, "answered-contact", version)
        return Judgement(verdict.score, verdict.label, verdict.evidence, "model", version)

    def _configured_rules(self) -> dict[str, str]:
        if self._configured is None:
            self._configured = configured(self.allow, self.block)
        return self._configured


# A Core statement, built once: the session runs it without the ORM's work around each call.
_ANSWERED = select(table(Contact).c.answered).where(table(Contact).c.address == bindparam("address"))


def _answered(session: Session, address: str) -> bool:
    return bool(address) and bool(session.scalar(_ANSWERED, {"address": address}))
