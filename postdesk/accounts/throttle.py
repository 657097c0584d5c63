"""Sign-in throttling per account and per client address.

Five failures within 15 minutes are free; after that each further attempt must wait twice as
long as the one before, from the last failure: 1, 2, 4, 8, 16, then 30 s at most. An address
waits for its own failures (whatever account it tries). An account's failures slow down only
the addresses that have themselves failed on it recently: someone guessing from elsewhere does
not lock the agent out, and the agent's correct sign-in from their own address goes through.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models import SignInFailure

WINDOW = timedelta(minutes=15)
FREE = 5
LONGEST = 30.0


def account_key(login: str) -> str:
    """How an account is named in the failure log: a hash of the name typed, not the name."""
    return hashlib.sha256(login.strip().lower().encode()).hexdigest()


def wait_after(failures: int) -> float:
    """Seconds to wait after the last of `failures` failures in the window."""
    return 0.0 if failures < FREE else min(LONGEST, float(2 ** (failures - FREE)))


def seconds_to_wait(session: Session, account: str, address: str, now: datetime) -> float:
    """How long the next attempt on `account` from `address` must still wait (0: go ahead)."""
    since = now - WINDOW
    waits = [_wait(session, now, SignInFailure.address == address, SignInFailure.at > since)]
    if session.scalar(
        select(SignInFailure.id)
        .where(SignInFailure.account == account, SignInFailure.address == address, SignInFailure.at > since)
        .limit(1)
    ):
        waits.append(_wait(session, now, SignInFailure.account == account, SignInFailure.at > since))
    return max(waits)


def _wait(session: Session, now: datetime, *where) -> float:
    count, last = session.execute(select(func.count(), func.max(SignInFailure.at)).where(*where)).one()
    if not count:
        return 0.0
    if last.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        last = last.replace(tzinfo=now.tzinfo)
    return max(0.0, wait_after(count) - (now - last).total_seconds())


def record_failure(session: Session, account: str, address: str, now: datetime) -> None:
    """Log a failure and forget those older than the window."""
    session.execute(delete(SignInFailure).where(SignInFailure.at <= now - WINDOW))
    session.add(SignInFailure(account=account, address=address[:64], at=now))
