"""`postdesk users …` as an operator types it: the first owner, roles, departments, 2FA resets, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pyotp

from models import Agent, RecoveryCode
from models.db import Database
from postdesk.accounts import passwords
from serve import settings_env


def users(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", "users", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def agent(settings, email: str) -> Agent:
    db = Database(settings.sqlalchemy_url)
    try:
        with db.read() as session:
            return session.query(Agent).filter_by(email=email).one()
    finally:
        db.dispose()


def test_the_first_owner_gets_a_one_time_password_that_signs_in_once_changed(settings):
    done = users(settings, "create", "Olga@Example.com", "--role", "owner", "--name", "Olga")
    assert done.returncode == 0, done.stderr
    one_time = done.stdout.split("one-time password: ")[1].split()[0]
    olga = agent(settings, "olga@example.com")
    assert olga.role == "owner" and olga.must_change_password and passwords.verify(olga.password_hash, one_time)
    assert one_time not in olga.password_hash
    listed = json.loads(users(settings, "list", "--json").stdout)
    assert listed == [
        {
            "id": olga.id,
            "email": "olga@example.com",
            "name": "Olga",
            "role": "owner",
            "active": True,
            "two_factor": False,
            "departments": [],
        }
    ]


def test_an_agent_with_departments_and_a_password_read_from_stdin(settings):
    done = users(
        settings,
        "create",
        "sam@example.com",
        "-d",
        "Support",
        "-d",
        "billing",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert done.returncode == 0 and "one-time password" not in done.stdout
    assert passwords.verify(agent(settings, "sam@example.com").password_hash, "a long enough password")
    assert users(settings, "set-departments", "sam@example.com", "Billing").returncode == 0
    [row] = json.loads(users(settings, "list", "--json").stdout)
    assert row["departments"] == ["Billing"]


def test_mistakes_get_one_line_and_a_non_zero_exit(settings):
    assert users(settings, "create", "olga@example.com", "--role", "owner").returncode == 0
    for args, message in [
        (("create", "olga@example.com"), "already exists"),
        (("create", "not-an-address"), "is not an email address"),
        (("create", "x@example.com", "-d", "Marketing"), "no department 'Marketing'"),
        (("create", "x@example.com", "--role", "god"), "no role 'god'"),
        (("set-role", "nobody@example.com", "admin"), "no user nobody@example.com"),
        (("deactivate", "olga@example.com"), "only active owner"),
        (("set-role", "olga@example.com", "agent"), "only active owner"),
    ]:
        done = users(settings, *args)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_roles_deactivation_and_a_second_factor_reset(settings):
    users(settings, "create", "olga@example.com", "--role", "owner")
    users(settings, "create", "sam@example.com")
    db = Database(settings.sqlalchemy_url)
    try:
        with db.write() as session:
            sam = session.query(Agent).filter_by(email="sam@example.com").one()
            sam.totp_secret = pyotp.random_base32()
            session.add(RecoveryCode(agent_id=sam.id, code_hash="x" * 64))
        assert users(settings, "set-role", "sam@example.com", "admin").returncode == 0
        assert users(settings, "reset-2fa", "sam@example.com").returncode == 0
        assert users(settings, "deactivate", "sam@example.com").returncode == 0
        assert users(settings, "require-2fa", "agent", "--on").returncode == 0
        with db.read() as session:
            sam = session.query(Agent).filter_by(email="sam@example.com").one()
            assert (sam.role, sam.active, sam.totp_secret) == ("admin", False, None)
            assert session.query(RecoveryCode).count() == 0
    finally:
        db.dispose()
    listed = users(settings, "list")
    assert listed.returncode == 0 and "sam@example.com" in listed.stdout
