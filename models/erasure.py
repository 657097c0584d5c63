"""Erasure jobs: one row per erasure of a person, holding its progress and counts, never the person.

The row is how a job killed midway is found and finished: by the keyed hash of the address (the
key lives beside the erasure ledger, outside the database), or by the contact id it was started
with. Its counts add up the committed batches, so the receipt of a resumed job counts them all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import NEVER_REUSED, Base, serial_id, utcnow


class ErasureJob(Base):
    __tablename__ = "erasure_jobs"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = serial_id()
    receipt: Mapped[str] = mapped_column(String(36), unique=True)  # a random id, shown on the receipt
    subject_hmac: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[int | None] = mapped_column(index=True)  # the contact it erases, when it had one (no key)
    mode: Mapped[str] = mapped_column(String(16))  # delete | anonymise
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
