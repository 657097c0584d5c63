"""Preparing batches in a worker process: the same tickets as inline, and a dead worker loses nothing."""

from __future__ import annotations

import os
import signal
from contextlib import suppress

from sqlalchemy import select

from conftest import Harness
from ingest.prepare import PrepareOptions, Preparer, prepare_all
from ingest.spool import Entry
from models import Message
from models.mail.envelope import Envelope
from models.mail.mime_limits import ParseLimits
from serve import spawned_children

OPTIONS = PrepareOptions(ParseLimits(), (), 5000, 1 << 22)


def mail(subject: str) -> bytes:
    return (
        f"From: Ann <ann@example.org>\nTo: support@example.com\nSubject: {subject}\n\nHello about {subject}\n".encode()
    )


def test_a_runner_with_a_prepare_worker_stores_every_message(settings):
    postdesk = Harness(settings.model_copy(update={"runner_prepare_workers": 1}))
    try:
        with postdesk.client() as client:
            for n in range(30):
                client.sendmail("ann@example.org", ["support@example.com"], mail(f"order {n}"))
        postdesk.drain()
        with postdesk.app.db.read() as session:
            subjects = set(session.scalars(select(Message.subject)))
    finally:
        postdesk.close()
    assert subjects == {f"order {n}" for n in range(30)}


def test_a_batch_whose_worker_died_is_prepared_inline():
    entries = [Entry(f"{n:x}-00000000", mail(f"order {n}"), Envelope()) for n in range(5)]
    preparer = Preparer(1)
    try:
        preparer.submit(entries, OPTIONS).result()  # the worker is up
        for pid in spawned_children(os.getpid()):
            os.kill(pid, signal.SIGKILL)
            with suppress(ChildProcessError):  # the pool's own thread may reap it first
                os.waitpid(pid, 0)
        prepared = preparer.result(preparer.submit(entries, OPTIONS), entries, OPTIONS)
        again = preparer.result(preparer.submit(entries, OPTIONS), entries, OPTIONS)  # a new worker
    finally:
        preparer.close()
    inline = prepare_all(entries, OPTIONS)
    assert (
        [p.parsed.subject for p in prepared] == [p.parsed.subject for p in inline] == [f"order {n}" for n in range(5)]
    )
    assert [p.features.ids.tolist() for p in again] == [p.features.ids.tolist() for p in inline]
