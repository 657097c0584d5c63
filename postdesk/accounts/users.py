"""Managing agents: what `postdesk users ...` and the admin pages do. Errors are `UserError`
with a sentence for the person who typed the command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from models import Agent, AgentDepartment, Department, RecoveryCode, RolePolicy
from models.agent import ROLES
from models.db import count
from postdesk.accounts import passwords, sessions


class UserError(Exception):
    """The request cannot be done; the message says why."""


@dataclass(frozen=True)
class Created:
    agent_id: int
    password: str | None  # the one-time password to hand over, when Postdesk made it


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not (local and at and domain) or any(ch.isspace() for ch in email):
        raise UserError(f"{email!r} is not an email address")
    return email


def _role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"no role {role!r}: one of {', '.join(ROLES)}")
    return role


def agent_by_email(session: Session, email: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.email == _normal_email(email)))
    if agent is None:
        raise UserError(f"no user {email.strip().lower()}")
    return agent


def _departments(session: Session, names: list[str]) -> list[Department]:
    found = {d.name.lower(): d for d in session.scalars(select(Department))}
    missing = [n for n in names if n.lower() not in found]
    if missing:
        known = ", ".join(sorted(d.name for d in found.values())) or "none yet"
        raise UserError(f"no department {missing[0]!r} (known: {known})")
    return [found[n.lower()] for n in names]


def create(
    session: Session,
    email: str,
    *,
    name: str = "",
    role: str = "agent",
    departments: Sequence[str] = (),
    password: str | None = None,
) -> Created:
    """A new active agent who must choose a password at the first sign-in. Without `password`,
    Postdesk makes a one-time one and returns it."""
    email, role = _normal_email(email), _role(role)
    if session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
        raise UserError(f"{email} already exists")
    if password is not None and (why := passwords.weakness(password)):
        raise UserError(why)
    made = None if password is not None else passwords.one_time_password()
    agent = Agent(
        email=email,
        name=name,
        role=role,
        active=True,
        must_change_password=True,
        password_hash=passwords.hash_password(password or made or ""),
    )
    agent.departments = _departments(session, list(departments))
    session.add(agent)
    session.flush()
    return Created(agent.id, made)


def listing(session: Session) -> list[dict]:
    agents = session.scalars(select(Agent).options(selectinload(Agent.departments)).order_by(Agent.email))
    return [
        {
            "id": a.id,
            "email": a.email,
            "name": a.name,
            "role": a.role,
            "active": a.active,
            "two_factor": a.totp_secret is not None,
            "departments": [d.name for d in a.departments],
        }
        for a in agents
    ]


def _active_owners(session: Session) -> int:
    return count(session, select(func.count()).select_from(Agent).where(Agent.role == "owner", Agent.active))


def _keep_an_owner(session: Session, agent: Agent) -> None:
    if agent.role == "owner" and agent.active and _active_owners(session) <= 1:
        raise UserError(f"{agent.email} is the only active owner; make another owner first")


def deactivate(session: Session, email: str) -> None:
    """The agent can no longer sign in; their sessions end now. Their tickets stay assigned."""
    agent = agent_by_email(session, email)
    _keep_an_owner(session, agent)
    agent.active = False
    sessions.end_all(session, agent.id)


def set_role(session: Session, email: str, role: str) -> None:
    agent = agent_by_email(session, email)
    if role != agent.role:
        _keep_an_owner(session, agent)
    agent.role = _role(role)
    sessions.end_all(session, agent.id)  # signed in again under the new role's 2FA rule


def set_departments(session: Session, email: str, names: list[str]) -> None:
    agent = agent_by_email(session, email)
    wanted = _departments(session, names)
    session.execute(delete(AgentDepartment).where(AgentDepartment.agent_id == agent.id))
    session.add_all(AgentDepartment(agent_id=agent.id, department_id=d.id) for d in wanted)


def reset_2fa(session: Session, email: str) -> None:
    """Forget the agent's second factor and recovery codes (a lost phone); they enrol again."""
    agent = agent_by_email(session, email)
    agent.totp_secret = agent.totp_pending = agent.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent.id))
    sessions.end_all(session, agent.id)


def requires_2fa(session: Session, role: str) -> bool:
    return bool(session.scalar(select(RolePolicy.require_2fa).where(RolePolicy.role == role)))


def policies(session: Session) -> dict[str, bool]:
    found = dict(session.execute(select(RolePolicy.role, RolePolicy.require_2fa)).tuples().all())
    return {role: bool(found.get(role, False)) for role in ROLES}


def set_2fa_required(session: Session, role: str, required: bool) -> None:
    role = _role(role)
    policy = session.get(RolePolicy, role)
    if policy is None:
        session.add(RolePolicy(role=role, require_2fa=required))
    else:
        policy.require_2fa = required
