"""Agents (the people who answer tickets), their departments, and what signing in to the web view keeps.

Roles: `owner` and `admin` see every department and manage people; an `agent` sees the tickets
of their departments only. Secrets are kept only as hashes (argon2 for passwords, SHA-256 for
session tokens and recovery codes, which are long random strings); the TOTP secret is kept as
is, since checking a code needs it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import NEVER_REUSED, Base, serial_id, utcnow

ROLES = ("owner", "admin", "agent")


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="agent")
    active: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # set once enrolment is confirmed
    totp_pending: Mapped[str | None] = mapped_column(String(64))  # shown as a QR code, not yet confirmed
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code's time step is accepted once
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    departments = relationship("Department", secondary="agent_departments", order_by="Department.name")


class AgentDepartment(Base):
    __tablename__ = "agent_departments"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True)


class WebSession(Base):
    """A signed-in browser. `stage` is `full`, or the step of signing in still to do."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    agent = relationship("Agent")


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class SignInFailure(Base):
    """A failed sign-in, for throttling: kept for the throttling window only. `account` is a hash
    of the name typed, so a typo or someone else's address is not kept in clear."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_sign_in_failures_account_at", "account", "at"),
        Index("ix_sign_in_failures_address_at", "address", "at"),
    )


class RolePolicy(Base):
    """Whether a role must sign in with a second factor (set by admins)."""

    __tablename__ = "role_policies"
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    require_2fa: Mapped[bool] = mapped_column(default=False)
