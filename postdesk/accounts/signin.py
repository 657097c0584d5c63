"""Signing in, step by step: password, then the second factor (when enrolled), then a new password
(after a one-time one), then enrolment (when the role requires two factors and there is none yet).
Each step returns what the web view shows next; the session row holds the step still to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Agent
from postdesk.accounts import passwords, recovery, throttle, totp, users

STEPS = ("password", "second_factor", "new_password", "enrol", "full")


@dataclass(frozen=True)
class Attempt:
    ok: bool
    wait: float = 0.0  # above 0: throttled, nothing was checked; try again after this many seconds
    agent_id: int | None = None


def next_step(session: Session, agent: Agent, done: str) -> str:
    """The step after `done` that this agent still has to take."""
    for step in STEPS[STEPS.index(done) + 1 :]:
        if step == "second_factor" and agent.totp_secret:
            return step
        if step == "new_password" and agent.must_change_password:
            return step
        if step == "enrol" and not agent.totp_secret and users.requires_2fa(session, agent.role):
            return step
    return "full"


def check_password(session: Session, login: str, password: str, address: str, now: datetime) -> Attempt:
    account = throttle.account_key(login)
    if (wait := throttle.seconds_to_wait(session, account, address, now)) > 0:
        return Attempt(False, wait)
    agent = session.scalar(select(Agent).where(Agent.email == login.strip().lower()))
    if passwords.verify(agent.password_hash if agent else None, password) and agent is not None and agent.active:
        return Attempt(True, agent_id=agent.id)
    throttle.record_failure(session, account, address, now)
    return Attempt(False)


def check_second_factor(session: Session, agent: Agent, code: str, address: str, now: datetime) -> Attempt:
    """A code from the authenticator app (each accepted once) or an unused recovery code."""
    account = throttle.account_key(agent.email)
    if (wait := throttle.seconds_to_wait(session, account, address, now)) > 0:
        return Attempt(False, wait)
    step = totp.matching_step(agent.totp_secret, code, now, agent.totp_last_step) if agent.totp_secret else None
    if step is not None:
        agent.totp_last_step = step
        return Attempt(True, agent_id=agent.id)
    if recovery.looks_like_one(code) and recovery.use_code(session, agent.id, code, now):
        return Attempt(True, agent_id=agent.id)
    throttle.record_failure(session, account, address, now)
    return Attempt(False)


def enrolment_secret(agent: Agent) -> str:
    """The secret being enrolled (made on first sight, kept until confirmed)."""
    if agent.totp_pending is None:
        agent.totp_pending = totp.new_secret()
    return agent.totp_pending


def confirm_enrolment(session: Session, agent: Agent, code: str, now: datetime) -> list[str] | None:
    """A correct code from the new secret makes it the agent's second factor; returns the new recovery codes."""
    if agent.totp_pending is None:
        return None
    step = totp.matching_step(agent.totp_pending, code, now, None)
    if step is None:
        return None
    agent.totp_secret, agent.totp_pending, agent.totp_last_step = agent.totp_pending, None, step
    return recovery.replace_codes(session, agent.id)


def set_password(agent: Agent, new: str, repeated: str) -> str | None:
    """Set a new password; returns why not, or None."""
    if new != repeated:
        return "the two passwords differ"
    if why := passwords.weakness(new):
        return why
    if passwords.verify(agent.password_hash, new):
        return "choose a password other than the one-time or current one"
    agent.password_hash, agent.must_change_password = passwords.hash_password(new), False
    return None
