"""The pipeline's spam stage: the live model's verdict, overridden by sender rules and answered contacts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier.live import LiveModel
from classifier.senders import rule_for
from ingest.message import ParsedMessage
from models import Contact

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
        self._refreshed_for: Session | None = None

    def judge(self, session: Session, msg: ParsedMessage, sender: str) -> Judgement:
        if session is not self._refreshed_for:  # one refresh per runner transaction, i.e. per batch
            self.live.refresh(session)
            self._refreshed_for = session
        verdict = self.live.filter.classify(msg)
        version = self.live.version_id
        rule = rule_for(session, sender, self.allow, self.block)
        if rule is not None:
            label = "ham" if rule == "allow" else "spam"
            return Judgement(verdict.score, label, verdict.evidence, f"{rule}-list", version)
        if verdict.label == "spam" and _answered(session, sender):
            return Judgement(verdict.score, "unsure", verdict.evidence, "answered-contact", version)
        return Judgement(verdict.score, verdict.label, verdict.evidence, "model", version)


def _answered(session: Session, address: str) -> bool:
    return bool(address) and bool(session.scalar(select(Contact.answered).where(Contact.address == address)))
