"""Sender allow and block lists (settings and the `sender_rules` table), by address or domain.

An allow rule makes a message ham and a block rule makes it spam, whatever the model says; the
most specific rule wins (the address, then the domain, then its parent domains).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SenderRule
from models.base import table, utcnow
from models.upsert import insert_ignore


_DOMAIN = re.compile(r"(?=.{1,253}$)\w(?:[\w-]{0,61}\w)?(?:\.\w(?:[\w-]{0,61}\w)?)*")  # \w: IDN labels too
_LOCAL = re.compile(r"[^\s@\"(),:;<>\[\\\]]{1,64}")  # what a sender's address has before the @, unquoted


def normalise(pattern: str) -> str:
    """`Bob@Example.com` stays an address, `@example.com` or `example.com` is a domain; anything
    else (spaces, two @, a domain with an empty or hyphen-edged label) is a ValueError saying so."""
    pattern = pattern.strip().lower().lstrip("@")
    local, at, domain = pattern.rpartition("@")
    if not _DOMAIN.fullmatch(domain) or (at and not _LOCAL.fullmatch(local)):
        raise ValueError(f"{pattern!r} is neither an address (name@example.com) nor a domain (example.com)")
    return pattern


def candidates(address: str) -> list[str]:
    """The patterns that could match an address, most specific first."""
    address = address.lower()
    _, _, domain = address.rpartition("@")
    labels = domain.split(".")
    return [address] + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def rule_for(session: Session, address: str, allow: list[str], block: list[str]) -> str | None:
    """ "allow", "block" or None for a sender address."""
    if not address:
        return None
    rules = select(SenderRule.pattern, SenderRule.action).where(SenderRule.pattern.in_(candidates(address)))
    stored = dict(session.execute(rules).tuples().all())
    return match(address, stored, configured(allow, block))


_ALL_RULES = select(table(SenderRule).c.pattern, table(SenderRule).c.action)  # Core: no ORM work per call


def all_rules(session: Session) -> dict[str, str]:
    """Every stored rule, pattern → action (a small table: the runner loads it once per batch)."""
    return dict(session.execute(_ALL_RULES).tuples().all())


def configured(allow: list[str], block: list[str]) -> dict[str, str]:
    """The settings' lists as pattern → action; allow wins over block for the same pattern."""
    return {**{normalise(p): "block" for p in block}, **{normalise(p): "allow" for p in allow}}


def match(address: str, stored: dict[str, str], configured: dict[str, str]) -> str | None:
    """The most specific rule for an address, stored rules before configured ones for a pattern."""
    if not address:
        return None
    for pattern in candidates(address):
        if pattern in stored or pattern in configured:
            return stored.get(pattern) or configured[pattern]
    return None


def set_rule(session: Session, pattern: str, action: str) -> str:
    pattern = normalise(pattern)
    insert_ignore(session, SenderRule, [{"pattern": pattern, "action": action, "created_at": utcnow()}])
    session.get_one(SenderRule, pattern).action = action
    return pattern


def remove_rule(session: Session, pattern: str) -> bool:
    rule = session.get(SenderRule, normalise(pattern))
    if rule is not None:
        session.delete(rule)
    return rule is not None
