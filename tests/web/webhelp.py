"""Helpers for the web view's tests: a fake clock, agents made through the accounts module, and a
browser-like client that signs in through the real forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC

import pyotp
import pytest
from fastapi.testclient import TestClient

from conftest import MAILBOXES
from models import Agent
from models.db import Database
from postdesk.accounts import users
from postdesk.web.app import create_app
from tickets.mailbox_rows import sync_mailboxes

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)


@dataclass
class FakeClock:
    moment: datetime = T0

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class Person:
    email: str
    password: str = PASSWORD
    secret: str | None = None
    agent_id: int = 0
    codes: list[str] = field(default_factory=list)

    def code(self, clock: FakeClock, steps: int = 0) -> str:
        return pyotp.TOTP(self.secret).at(clock() + timedelta(seconds=30 * steps))


def make_agent(db, email: str, role: str = "agent", departments=(), two_factor: bool = True) -> Person:
    """An agent past the first sign-in: own password chosen, second factor enrolled (or not)."""
    with db.write() as session:
        created = users.create(
            session,
            email,
            name=email.split("@")[0].title(),
            role=role,
            departments=list(departments),
            password=PASSWORD,
        )
        agent = session.get(Agent, created.agent_id)
        agent.must_change_password = False
        if two_factor:
            agent.totp_secret = pyotp.random_base32()
        return Person(email, secret=agent.totp_secret, agent_id=agent.id)


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    return _CSRF.search(html)[1]


def browser(app, address: str = "198.51.100.7", https: bool = False, **kw) -> TestClient:
    return TestClient(
        app,
        base_url="https://testserver" if https else "http://testserver",
        client=(address, 50000),
        follow_redirects=False,
        **kw,
    )


def post_form(client: TestClient, page: str, action: str | None = None, **fields):
    """Open `page`, then submit its form to `action` (default: the page) with its CSRF token."""
    token = csrf_of(client.get(page).text)
    return client.post(action or page, data={"csrf": token, **fields})


def sign_in(client: TestClient, person: Person, clock: FakeClock, steps: int = 0):
    """Password, then the second factor when enrolled; returns the last response."""
    response = post_form(client, "/signin", email=person.email, password=person.password)
    assert response.status_code == 303, response.text
    if response.headers["location"] == "/signin/code":
        response = post_form(client, "/signin/code", code=person.code(clock, steps))
        assert response.status_code == 303, response.text
    return response


# Fixtures (imported by the test modules): the app on a migrated database, with a fake clock.


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def db(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # as `postdesk serve` leaves it
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.write() as session:
        sync_mailboxes(session, MAILBOXES)
    yield db
    db.dispose()


@pytest.fixture
def web(settings, db, clock):
    return create_app(settings, db, now=clock)


def sign_in_browser(page, url: str, person: Person) -> None:
    """Sign in through the real pages in a Playwright page: password, then the TOTP code."""
    page.goto(url + "signin")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/signin/code")
    page.fill("input[name=code]", pyotp.TOTP(person.secret).now())
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/open")
