"""Who is asking: the signed-in agent of a request (a FastAPI dependency), the step of signing in a
half-signed-in browser is at, and the CSRF check every form goes through."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select

from models import Agent, AgentDepartment, WebSession
from postdesk.accounts import sessions
from postdesk.web.site import SESSION_COOKIE, Site, site_of
from tickets.queues import Scope

STEP_PAGES = {
    "second_factor": "/signin/code",
    "new_password": "/signin/password",
    "enrol": "/signin/enrol",
    "full": "/",
}


class SignInNeeded(Exception):
    """No live session: the browser goes to the sign-in page."""


class StepNeeded(Exception):
    """Half signed in: the browser goes to the page of the step still to do."""

    def __init__(self, step: str):
        self.step = step


class FormExpired(Exception):
    """A form came without the right CSRF token."""


@dataclass(frozen=True)
class Viewer:
    agent_id: int
    email: str
    name: str
    role: str
    departments: frozenset[int] | None  # None: every department
    csrf: str
    stage: str

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def scope(self) -> Scope:
        return Scope(self.agent_id, self.departments)


def _viewer(session, row: WebSession) -> Viewer | None:
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.active:
        return None
    departments = (
        None
        if agent.role in ("owner", "admin")
        else frozenset(
            session.scalars(select(AgentDepartment.department_id).where(AgentDepartment.agent_id == agent.id))
        )
    )
    return Viewer(agent.id, agent.email, agent.name, agent.role, departments, row.csrf_token, row.stage)


def session_viewer(site: Site, token: str | None) -> Viewer | None:
    """The agent behind `token`, at whatever step; a read unless the session must be touched or ended."""
    now = site.now()
    with site.db.read() as session:
        row = sessions.peek(session, token, with_agent=True)
        if row is None:
            return None
        if not sessions.needs_write(row, now, site.limits):
            return _viewer(session, row)
    with site.db.write() as session:
        row = sessions.find(session, token, now, site.limits)
        return _viewer(session, row) if row is not None else None


def viewer(request: Request) -> Viewer:
    """Dependency of every signed-in page."""
    found = session_viewer(site_of(request), request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInNeeded()
    if found.stage != "full":
        raise StepNeeded(found.stage)
    request.state.viewer = found
    return found


def at_step(request: Request, step: str) -> Viewer:
    """The half-signed-in agent at `step` (any other step is sent to its own page)."""
    found = session_viewer(site_of(request), request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInNeeded()
    if found.stage != step:
        raise StepNeeded(found.stage)
    return found


def check_csrf(given: str | None, expected: str | None) -> None:
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise FormExpired()
