"""`postdesk serve` as an operator sees it: it starts or says why not, it stops within its stated
time whatever its children did, it leaves no process behind, and a database that is down at start
does not keep the SMTP edge from taking mail."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import time

import pytest
from sqlalchemy import func, select

from conftest import PG_URL
from models import Message
from models.db import Database
from serve import alive, processes, spawned_children
from waiting import wait_for

STOP_TIMEOUT = 10.0  # serve's stop_timeout in these tests, so a runner that must be killed costs 8 s, not 24


def mail(n: int) -> bytes:
    return (
        f"From: c{n}@example.org\r\nTo: support@example.com\r\nSubject: n{n}\r\n"
        f"Message-ID: <serve-{n}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


def send(port: int, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("c@example.org", ["support@example.com"], mail(n))


def stored(settings) -> int:
    db = Database(settings.sqlalchemy_url)
    try:
        with db.read() as session:
            return session.scalar(select(func.count()).select_from(Message))
    finally:
        db.dispose()


def state(pid: int) -> str | None:
    return next((p.state for p in processes() if p.pid == pid), None)


def stops_in_time(server) -> None:
    """SIGTERM: exit 0 within the stated time, and no child of serve left running."""
    started = time.monotonic()
    assert server.terminate(timeout=STOP_TIMEOUT) == 0
    assert time.monotonic() - started < STOP_TIMEOUT
    wait_for(lambda: not server.left_behind(), 30, what="serve's children to end with it")


def test_a_busy_smtp_port_ends_serve_at_once_with_one_line_and_no_child_left(settings, serve):
    settings.data_dir.mkdir(parents=True)  # an installation restarted (a first start also says it made the folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = serve(ready=False, smtp_port=taken.getsockname()[1])
        assert server.proc.wait(timeout=60) != 0
    [line] = server.log().strip().splitlines()
    assert line.startswith("error: cannot start:") and "address already in use" in line.lower(), line
    assert not server.left_behind()


def test_serve_stops_in_time_after_its_idle_runner_was_killed(settings, serve):
    server = serve(stop_timeout=STOP_TIMEOUT)
    send(server.port, 1)
    wait_for(lambda: stored(settings) == 1, what="the first message stored")  # the runner is warm, now idle
    os.kill(server.runner(), signal.SIGKILL)
    stops_in_time(server)


def test_serve_stops_in_time_when_its_runner_does_not_answer(settings, serve):
    server = serve(stop_timeout=STOP_TIMEOUT)
    send(server.port, 1)
    # Stored: the runner handles SIGTERM by now (while it starts, the default action would end it
    # at once, stopped or not).
    wait_for(lambda: stored(settings) == 1, what="the first message stored")
    runner = server.runner()
    os.kill(runner, signal.SIGSTOP)  # hung: it will not finish the batch in hand
    wait_for(lambda: state(runner) == "T", what="the runner stopped by SIGSTOP")
    stops_in_time(server)
    assert "runner did not stop" in server.log()


def test_a_killed_runner_takes_its_prepare_worker_with_it(settings, serve):
    server = serve(runner_prepare_workers=1)
    runner = server.runner()
    [worker] = wait_for(lambda: spawned_children(runner), what="the runner's prepare worker")
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: not alive(worker), what="the orphaned prepare worker to end")
    server.runner(not_pid=runner)  # serve started another
    stops_in_time(server)


def test_serve_killed_leaves_no_process_behind(settings, serve):
    server = serve(runner_prepare_workers=1)
    wait_for(lambda: spawned_children(server.runner()), what="the runner's prepare worker")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    wait_for(lambda: not server.left_behind(), what="the runner, its worker and the resource tracker to end")


def test_serve_takes_mail_while_postgresql_is_unreachable(settings, serve):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    server = serve(database_url=f"postgresql+psycopg://postdesk@127.0.0.1:{port}/postdesk", stop_timeout=STOP_TIMEOUT)
    send(server.port, 1)
    server.wait_for_log("database unavailable")
    depth = os.listdir(settings.spool_dir / "new") + os.listdir(settings.spool_dir / "cur")
    assert len(depth) == 1 and not os.listdir(settings.spool_dir / "bad")
    stops_in_time(server)
    assert "Traceback" not in server.log()


@pytest.mark.skipif(bool(PG_URL), reason="a SQLite lock")
def test_serve_takes_mail_while_sqlite_is_locked_and_stores_it_once_the_lock_is_gone(settings, serve):
    holder = sqlite3.connect(settings.sqlalchemy_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        server = serve(sqlite_busy_timeout=0.2, stop_timeout=STOP_TIMEOUT)
        send(server.port, 1)
        server.wait_for_log("database unavailable")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: stored(settings) == 1, 60, what="the message stored once the lock is gone")
    stops_in_time(server)
    assert "Traceback" not in server.log()
