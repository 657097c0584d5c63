"""IMAP ingestion against a real Dovecot (fixtures in tests/dovecot.py): nothing lost, little repeated."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ingest.imap.connect import password_login
from ingest.imap.poller import IDLE_CHECK, ImapPoller, start_pollers
from ingest.imap.state import load_state
from ingest.imap.sync import FolderSync, after_import
from ingest.spool import Spool
from models.mail.envelope import Envelope
from models.settings import ImapAccount
from postdesk.cli.imap import group as imap_app, imap_status, imap_test
from conftest import MAILBOXES
from imapclient import IMAPClient
from models.settings import Settings
from waiting import wait_for

SEEN, DELETED = b"\\Seen", b"\\Deleted"


class Crash(BaseException):
    """Stands for the process being killed: no `except Exception` catches it."""


def message(n: int, body: bytes = b"Hello, it is broken.\n") -> bytes:
    head = (
        f"From: customer{n}@example.org\nTo: support@example.com\nSubject: case {n}\n"
        f"Message-ID: <{n}.{time.time_ns()}@example.org>\n\n"
    )
    return head.encode() + body


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def spooled(spool: Spool) -> list[bytes]:
    return [entry.raw for entry in spool.waiting()]


@pytest.fixture
def spool(tmp_path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


class Running:
    """A poller in its thread; leaving the block stops it and checks it returned promptly."""

    def __init__(self, poller: ImapPoller):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=poller.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10 * IDLE_CHECK)
        assert not self.thread.is_alive(), f"poller did not stop within {10 * IDLE_CHECK} s"


def uids_with_flags(mua, folder: str = "INBOX") -> dict[int, tuple]:
    mua.select_folder(folder)
    return {uid: data[b"FLAGS"] for uid, data in mua.fetch("1:*", ["FLAGS"]).items()}


def test_messages_reach_the_spool_byte_identical(make_account, mua, spool, data_dir):
    originals = [message(1), message(2, b"caf\xc3\xa9 8bit\r\nCRLF already\r\n"), message(3, b"x" * 5000 + b"\n")]
    for raw in originals:
        mua.append("INBOX", raw)
    account = make_account()
    assert ImapPoller(account, spool, data_dir).sync_once() == 3
    assert spooled(spool) == [crlf(raw) for raw in originals]
    envelope = spool.waiting()[0].envelope
    assert (envelope.source, envelope.mail_from, envelope.rcpt_tos, envelope.peer) == (
        "imap",
        "",
        ["support@example.com"],
        "imap:support",
    )
    assert ImapPoller(account, spool, data_dir).sync_once() == 0, "a second pass fetches nothing again"


def test_first_connection_takes_only_new_mail_by_default(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1))
    poller = ImapPoller(make_account(initial_sync="new"), spool, data_dir)
    assert poller.sync_once() == 0
    mua.append("INBOX", message(2))
    assert poller.sync_once() == 1
    assert b"case 2" in spooled(spool)[0]


def test_keep_flags_seen(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1))
    ImapPoller(make_account(after_import="keep"), spool, data_dir).sync_once()
    assert list(uids_with_flags(mua).values()) == [(SEEN,)]


def test_move_puts_the_message_in_the_target_folder(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1))
    ImapPoller(make_account(after_import="move", move_to="Imported"), spool, data_dir).sync_once()
    assert uids_with_flags(mua) == {}
    mua.select_folder("Imported")
    assert len(mua.search(["ALL"])) == 1
    assert len(spooled(spool)) == 1


def test_delete_removes_only_our_own_uids(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1))
    mua.select_folder("INBOX")
    [theirs] = mua.search(["ALL"])
    mua.add_flags([theirs], [DELETED])  # a colleague's client deleted it, not yet expunged
    account = make_account(after_import="delete", initial_sync="new")
    poller = ImapPoller(account, spool, data_dir)
    poller.sync_once()
    mua.append("INBOX", message(2))
    assert poller.sync_once() == 1
    assert uids_with_flags(mua) == {theirs: (DELETED,)}


def test_idle_brings_new_mail_within_five_seconds(make_account, mua, spool, data_dir, dovecot, imap_user):
    account = make_account(poll_interval=300)
    with Running(ImapPoller(account, spool, data_dir)):
        wait_for(lambda: dovecot.idling(imap_user), what="the poller in IDLE")
        started = time.monotonic()
        mua.append("INBOX", message(1))
        wait_for(lambda: spool.pending(), timeout=5, what="IDLE to deliver the message")
        assert time.monotonic() - started < 5


def test_mail_reaching_the_folder_as_idle_begins_waits_at_most_the_poll_interval(
    make_account, mua, spool, data_dir, monkeypatch
):
    noop, arrivals = IMAPClient.noop, [message(1)]

    def mail_arrives_after_the_noop(self):  # the window before IDLE starts, which IDLE does not report
        answer = noop(self)
        if arrivals:
            mua.append("INBOX", arrivals.pop())
        return answer

    monkeypatch.setattr(IMAPClient, "noop", mail_arrives_after_the_noop)
    with Running(ImapPoller(make_account(poll_interval=1, idle_renew=300), spool, data_dir)):
        wait_for(lambda: spool.pending(), timeout=10, what="the next sync, a poll interval later")


def test_mail_that_arrives_during_a_sync_does_not_wait_for_the_idle_renewal(
    make_account, mua, spool, data_dir, monkeypatch
):
    sync_folder, arrivals = FolderSync.run, [message(1)]

    def mail_arrives_as_the_sync_ends(self, folder):  # INBOX is the only folder: the window before IDLE starts
        synced = sync_folder(self, folder)
        if arrivals:
            mua.append("INBOX", arrivals.pop())
        return synced

    monkeypatch.setattr(FolderSync, "run", mail_arrives_as_the_sync_ends)
    with Running(ImapPoller(make_account(poll_interval=300), spool, data_dir)):
        wait_for(lambda: spool.pending(), timeout=5, what="the message that came during the sync")


def test_mail_reaching_the_idle_folder_while_another_folder_syncs_does_not_wait_for_the_poll(
    make_account, mua, spool, data_dir, monkeypatch
):
    mua.create_folder("Other")
    sync_folder, arrivals = FolderSync.run, [message(1)]

    def mail_arrives_after_the_inbox_sync(self, folder):
        synced = sync_folder(self, folder)
        if folder == "INBOX" and arrivals:
            mua.append("INBOX", arrivals.pop())
        return synced

    monkeypatch.setattr(FolderSync, "run", mail_arrives_after_the_inbox_sync)
    account = make_account(folders=["INBOX", "Other"], poll_interval=300, idle_renew=300)
    with Running(ImapPoller(account, spool, data_dir)):
        wait_for(lambda: spool.pending(), timeout=5, what="the message that came while Other synced")


def test_idle_is_renewed_and_other_folders_are_polled(make_account, mua, spool, data_dir):
    mua.create_folder("Other")
    account = make_account(folders=["INBOX", "Other"], poll_interval=0.5, idle_renew=0.3)

    def last_sync(folder):
        state = load_state(data_dir, "support").folders.get(folder)
        return state.last_sync if state else None

    with Running(ImapPoller(account, spool, data_dir)):
        first = wait_for(lambda: last_sync("Other"), what="the first sync")
        mua.append("Other", message(1))
        wait_for(lambda: spool.pending(), timeout=3, what="the message in the second folder")
        wait_for(lambda: last_sync("INBOX") > first + 0.5, what="IDLE to be left and the folders synced again")


class FakeClient:
    """Just enough of IMAPClient to see what delete/move send to a server without UIDPLUS/MOVE."""

    def __init__(self):
        self.calls = []

    def has_capability(self, name: str) -> bool:
        return False

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, *args))


def test_without_uidplus_nothing_is_expunged(make_account, caplog):
    client = FakeClient()
    after_import(client, make_account(after_import="move", move_to="Done"), [7, 9])
    assert client.calls == [("copy", [7, 9], "Done"), ("add_flags", [7, 9], [SEEN, DELETED])]
    assert "lacks UIDPLUS" in caplog.text


class CrashingSpool(Spool):
    """Writes the message durably, then 'dies' before anything else happens."""

    def put(self, raw: bytes, envelope: Envelope) -> str:
        super().put(raw, envelope)
        raise Crash()


def test_crash_after_spool_write_refetches_at_most_once(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1))
    account = make_account()
    with pytest.raises(Crash):
        ImapPoller(account, CrashingSpool(spool.root), data_dir).sync_once()
    assert list(uids_with_flags(mua).values()) == [()], "not flagged before the state was saved"
    ImapPoller(account, spool, data_dir).sync_once()
    copies = spooled(spool)
    assert len(copies) == 2 and len({hashlib.sha256(c).hexdigest() for c in copies}) == 1
    assert list(uids_with_flags(mua).values()) == [(SEEN,)]
    assert ImapPoller(account, spool, data_dir).sync_once() == 0


def test_crash_between_state_and_flag_does_not_refetch(make_account, mua, spool, data_dir, monkeypatch):
    mua.append("INBOX", message(1))
    account = make_account()

    def crash(*args):
        raise Crash()

    monkeypatch.setattr("ingest.imap.sync.after_import", crash)
    with pytest.raises(Crash):
        ImapPoller(account, spool, data_dir).sync_once()
    assert load_state(data_dir, "support").folders["INBOX"].pending == [1]
    monkeypatch.undo()
    assert ImapPoller(account, spool, data_dir).sync_once() == 0
    assert len(spooled(spool)) == 1
    assert list(uids_with_flags(mua).values()) == [(SEEN,)], "the pending \\Seen was applied on restart"


def test_uidvalidity_change_refetches_the_folder(make_account, mua, spool, data_dir):
    mua.create_folder("Work")
    mua.append("Work", message(1))
    poller = ImapPoller(make_account(folders=["Work"]), spool, data_dir)
    assert poller.sync_once() == 1
    before = load_state(data_dir, "support").folders["Work"].uidvalidity
    mua.delete_folder("Work")
    mua.create_folder("Work")
    mua.append("Work", message(2))  # gets UID 1 again: without the check it would be missed
    assert poller.sync_once() == 1
    assert load_state(data_dir, "support").folders["Work"].uidvalidity != before
    assert b"case 2" in spooled(spool)[-1]


def test_oversize_and_unfetchable_are_skipped_and_recorded(make_account, mua, spool, data_dir):
    mua.append("INBOX", message(1, b"y" * 4000 + b"\n"))
    mua.append("INBOX", message(2))
    poller = ImapPoller(make_account(max_message_size=2048), spool, data_dir)
    assert poller.sync_once() == 1
    [skip] = load_state(data_dir, "support").folders["INBOX"].skipped
    assert skip["uid"] == 1 and "max_message_size" in skip["reason"]


class StoppingSpool(Spool):
    """Restarts Dovecot under the poller after the first message it is given."""

    def __init__(self, root: Path, dovecot):
        super().__init__(root)
        self.dovecot, self.restarted = dovecot, False

    def put(self, raw: bytes, envelope: Envelope) -> str:
        entry_id = super().put(raw, envelope)
        if not self.restarted:
            self.restarted = True
            self.dovecot.restart()
        return entry_id


def test_server_restart_between_batches_reconnects_and_finishes(make_account, mua, dovecot, spool, data_dir):
    originals = [message(n) for n in range(6)]
    for raw in originals:
        mua.append("INBOX", raw)
    restarting = StoppingSpool(spool.root, dovecot)
    with Running(ImapPoller(make_account(fetch_batch=2), restarting, data_dir)):
        wait_for(lambda: {crlf(r) for r in originals} <= set(spooled(spool)), what="all six messages")
    copies = spooled(spool)
    assert restarting.restarted and all(copies.count(crlf(r)) <= 2 for r in originals)


def test_server_down_then_back_is_reported_and_recovered(make_account, dovecot, imap_user, spool, data_dir):
    # poll_interval: the message may reach the folder just as the reconnected poller enters IDLE
    with Running(ImapPoller(make_account(poll_interval=2), spool, data_dir)):
        wait_for(lambda: load_state(data_dir, "support").folders.get("INBOX"), what="the first sync")
        dovecot.stop()
        wait_for(
            lambda: "connection refused" in (load_state(data_dir, "support").error or ""),
            what="the refusal in the status file",
        )
        dovecot.start()
        client = dovecot.client(imap_user)
        client.append("INBOX", message(1))
        client.logout()
        wait_for(lambda: spool.pending(), what="the message after the restart")
    assert load_state(data_dir, "support").error is None


def test_wrong_password_is_reported_and_not_hammered(make_account, spool, data_dir):
    attempts = []

    def counting_login(client, account):
        attempts.append(time.monotonic())
        password_login(client, account)

    account = make_account(password="wrong", login_retry=1.0)
    with Running(ImapPoller(account, spool, data_dir, login=counting_login)):
        wait_for(lambda: len(attempts) >= 2, what="a second login attempt")
        assert "login failed" in load_state(data_dir, "support").error
    assert attempts[1] - attempts[0] >= 1.0, "waits login_retry, not the short reconnect delay"


def _settings(tmp_path, *accounts: ImapAccount) -> Settings:
    return Settings(data_dir=tmp_path / "data", imap_accounts=list(accounts), mailboxes=MAILBOXES)


def test_tls_with_the_test_ca_and_starttls_work(make_account, dovecot, tmp_path):
    implicit = make_account(name="implicit")
    starttls = make_account(name="starttls", tls="starttls", port=dovecot.plain_port)
    settings = _settings(tmp_path, implicit, starttls)
    for name in ("implicit", "starttls"):
        ok, lines = imap_test(settings, name)
        assert ok, lines
        assert "connected and logged in" in lines


def test_untrusted_ca_is_refused_with_a_verification_error(make_account, dovecot, tmp_path):
    settings = _settings(tmp_path, make_account(ca_file=dovecot.untrusted_ca_file))
    ok, lines = imap_test(settings, "support")
    assert not ok
    assert "TLS certificate verification failed" in lines[-1]


def test_cli_test_and_status(make_account, mua, spool, data_dir, tmp_path):
    account = make_account(folders=["INBOX", "Missing"])
    settings = _settings(tmp_path, account)
    result = CliRunner().invoke(imap_app, ["test", "support"], obj=settings)
    assert result.exit_code == 1 and "folder 'Missing' does not exist" in result.output
    mua.append("INBOX", message(1))
    ImapPoller(make_account(), spool, data_dir).sync_once()
    [row] = [r for r in imap_status(settings) if r["folder"] == "INBOX"]
    assert row["imported"] == 1 and row["last_sync"] and row["last_error"] is None
    result = CliRunner().invoke(imap_app, ["status"], obj=settings)
    assert result.exit_code == 0 and "support/INBOX" in result.output and "1 imported" in result.output


def test_connection_refused_and_unknown_account_are_plain(make_account, tmp_path):
    from dovecot import free_port

    settings = _settings(tmp_path, make_account(port=free_port()))
    ok, lines = imap_test(settings, "support")
    assert not ok and "connection refused" in lines[-1]
    ok, lines = imap_test(settings, "nope")
    assert not ok and "no IMAP account named 'nope'" in lines[0]


def test_plain_imap_only_towards_loopback():
    base = dict(name="a", username="u", mailbox="support@example.com", tls="plain")
    ImapAccount(host="127.0.0.1", **base)
    with pytest.raises(ValidationError, match="loopback"):
        ImapAccount(host="imap.example.com", **base)
    with pytest.raises(ValidationError, match="move_to"):
        ImapAccount(host="::1", after_import="move", **{**base, "tls": "implicit"})


def test_start_pollers_runs_each_account_until_stopped(make_account, mua, spool, data_dir):
    mua.create_folder("Sales")
    # poll_interval: mail that reaches a folder just as its poller enters IDLE waits for the next sync
    accounts = [
        make_account(name="support", poll_interval=2),
        make_account(name="sales", folders=["Sales"], poll_interval=2),
    ]
    with pytest.raises(ValueError, match="share a name"):
        start_pollers([accounts[0], accounts[0]], spool, data_dir, threading.Event())
    stop = threading.Event()
    threads = start_pollers(accounts, spool, data_dir, stop)
    try:
        mua.append("INBOX", message(1))
        mua.append("Sales", message(2))
        wait_for(lambda: len(spool.pending()) == 2, 60, what="one message from each account")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10 * IDLE_CHECK)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(p.name for p in (data_dir / "imap").glob("*.json")) == ["sales.json", "support.json"]
