"""What the admins' spam page shows, read in one transaction: the active version and its figures,
the charts of its cross-validation, every version, the ledger's size, the agents' recent spam
decisions (from the audit trail: who, when, which ticket; never a body), and the sender rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier import ledger, senders, versions
from classifier.live import active_version
from models import Agent, AuditEvent, Message
from models.settings import Settings
from postdesk.web import charts

MARKS = ("spam-mark-spam", "spam-mark-ham")
RECENT = 50
# The figures a version keeps, as the page names them (rates in percent).
FIGURES = (
    ("fp_rate", "False positives", "% of decided ham"),
    ("fn_rate", "False negatives", "% of decided spam"),
    ("unsure", "Unsure", "messages"),
    ("one_minus_roca", "1 − ROC area", "%"),
    ("ham", "Ham", "messages"),
    ("spam", "Spam", "messages"),
    ("folds", "Folds", ""),
)


@dataclass(frozen=True)
class Decision:
    at: datetime
    label: str
    by: str
    message_id: int | None
    ticket_id: int | None  # None: the message is gone (erased)
    subject: str


def _who(actors: set[str], session: Session) -> dict[str, str]:
    """Audit actors as people read them: `agent:<id>` becomes the agent's name (or address)."""
    ids = {int(a[6:]) for a in actors if a.startswith("agent:") and a[6:].isdigit()}
    names = (
        {
            f"agent:{i}": name or email
            for i, name, email in session.execute(select(Agent.id, Agent.name, Agent.email).where(Agent.id.in_(ids)))
        }
        if ids
        else {}
    )
    return {a: names.get(a, a) for a in actors}


def recent_decisions(session: Session, limit: int = RECENT) -> list[Decision]:
    events = session.execute(
        select(AuditEvent.at, AuditEvent.action, AuditEvent.actor, AuditEvent.details)
        .where(AuditEvent.action.in_(MARKS))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    ).all()
    ids = {e.details.get("message") for e in events if isinstance(e.details, dict)} - {None}
    messages = (
        {
            i: (t, s)
            for i, t, s in session.execute(
                select(Message.id, Message.ticket_id, Message.subject).where(Message.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    who = _who({e.actor for e in events}, session)
    decisions = []
    for e in events:
        message_id = e.details.get("message") if isinstance(e.details, dict) else None
        ticket_id, subject = messages.get(message_id, (None, ""))
        decisions.append(Decision(e.at, e.action.rpartition("-")[2], who[e.actor], message_id, ticket_id, subject))
    return decisions


def _figures(figures: dict) -> list[tuple[str, str, str]]:
    return [
        (name, f"{figures[key]:.2f}" if isinstance(figures[key], float) else str(figures[key]), unit)
        for key, name, unit in FIGURES
        if key in figures
    ]


def context(session: Session, settings: Settings) -> dict:
    active = active_version(session)
    curves = (active.figures or {}).get("curves", {}) if active else {}
    rules = senders.all_rules(session)
    return {
        "active": active,
        "figures": _figures(active.figures or {}) if active else [],
        "roc": charts.roc(curves.get("roc", [])),
        "histogram": charts.histogram(curves.get("histogram", {}), settings.spam_ham_cutoff, settings.spam_spam_cutoff),
        "versions": [(v, _figures(v.figures or {})) for v in reversed(versions.versions(session))],
        "ledger": ledger.counts(session),
        "decisions": recent_decisions(session),
        "rules": sorted(rules.items(), key=lambda r: (r[1], r[0])),
        "configured": sorted(
            senders.configured(settings.spam_allow, settings.spam_block).items(), key=lambda r: (r[1], r[0])
        ),
        "cutoffs": (settings.spam_ham_cutoff, settings.spam_spam_cutoff),
    }
