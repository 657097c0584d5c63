"""IMAP ingestion: one poller thread per account, IDLE where the server has it, polling otherwise.

`ImapPoller(account, spool, data_dir).run(stop)` loops until `stop` is set: connect, log in, sync
every folder (see `ingest.imap.sync`), then wait in IDLE on the first folder (left to sync again every
`poll_interval` seconds, or `idle_renew` if shorter) or sleep `poll_interval`. Network failures
reconnect with exponential backoff up to `reconnect_max`; a rejected login waits `login_retry`.
Every failure is logged (ids and counts, no addresses) and written to the account's status file.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from imapclient import IMAPClient

from ingest.imap.connect import (
    NETWORK_ERRORS,
    ImapConnectError,
    ImapLoginError,
    LoginStrategy,
    close,
    connect,
    describe,
    password_login,
)
from ingest.imap.state import AccountState, load_state
from ingest.imap.sync import FolderSync
from ingest.spool import Spool, SpoolError
from ingest.stop_signal import StopSignal
from models.settings import ImapAccount

log = logging.getLogger("postdesk.imap")

IDLE_CHECK = 1.0  # seconds per idle_check(): how late a stop request may be noticed


class ImapPoller:
    """Keeps one account's folders drained into the spool until told to stop."""

    def __init__(self, account: ImapAccount, spool: Spool, data_dir: Path, login: LoginStrategy = password_login):
        self.account, self.spool, self.login = account, spool, login
        self.data_dir = Path(data_dir)
        self.delay = account.reconnect_delay
        self._synced_uidnext: dict[str, int | None] = {}  # what the last sync of each folder started from

    def run(self, stop: StopSignal) -> None:
        state = load_state(self.data_dir, self.account.name)
        while not stop.is_set():
            try:
                self._session(state, stop)
            except Exception as exc:  # the one catch-all: a poller thread must not die
                stop.wait(self._failed(state, exc))

    def sync_once(self) -> int:
        """Connect, import what is new in every folder, disconnect; returns messages spooled."""
        state = load_state(self.data_dir, self.account.name)
        client = self._connect(state)
        try:
            return self._sync_all(client, state)
        finally:
            close(client)

    def _connect(self, state: AccountState) -> IMAPClient:
        client = connect(self.account, self.login)
        state.error, state.connected_at = None, time.time()
        return client

    def _session(self, state: AccountState, stop: StopSignal) -> None:
        client = self._connect(state)
        try:
            use_idle = self.account.idle and client.has_capability("IDLE")
            while not stop.is_set():
                self._sync_all(client, state)
                self.delay = self.account.reconnect_delay
                if use_idle:
                    self._idle(client, stop)
                else:
                    stop.wait(self.account.poll_interval)
        finally:
            close(client)

    def _sync_all(self, client: IMAPClient, state: AccountState) -> int:
        self._ensure_move_target(client)
        sync = FolderSync(client, self.account, self.spool, state)
        imported = sum(sync.run(folder) for folder in self.account.folders)
        self._synced_uidnext = sync.uidnext
        return imported

    def _ensure_move_target(self, client: IMAPClient) -> None:
        target = self.account.move_to
        if self.account.after_import == "move" and not client.folder_exists(target):
            log.info("imap %s: creating the move_to folder", self.account.name)
            client.create_folder(target)

    def _idle(self, client: IMAPClient, stop: StopSignal) -> None:
        """Wait in IDLE until new mail, a stop request, a hint the connection died, or renewal."""
        folders = self.account.folders
        if len(folders) > 1:  # mail that reached it while the others synced is in SELECT's counts: no news in IDLE
            uidnext = client.select_folder(folders[0]).get(b"UIDNEXT")
            synced = self._synced_uidnext.get(folders[0])
            if uidnext is not None and synced is not None and uidnext > synced:
                return
        # Also with one folder: mail reaching it between the NOOP below and the start of IDLE is not
        # announced (Dovecot compares with the folder as IDLE found it), so only a sync finds it.
        deadline = time.monotonic() + min(self.account.poll_interval, self.account.idle_renew)
        # Mail that arrived while we synced is not announced once IDLE starts either: a NOOP
        # reports it now, leaving a window of one round trip.
        if _new_mail(client.noop()[1]):
            return
        client.idle()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                responses = client.idle_check(timeout=IDLE_CHECK)
                if _worth_waking(responses, time.monotonic() - started):
                    return
        finally:
            client.idle_done()  # raises when the server has gone: the caller reconnects

    def _failed(self, state: AccountState, exc: Exception) -> float:
        """Record the failure and return how long to wait before the next attempt."""
        message = self._message(exc)
        if isinstance(exc, ImapLoginError):
            wait = self.account.login_retry
        else:
            wait, self.delay = self.delay, min(self.delay * 2, self.account.reconnect_max)
        log.warning("imap %s: %s; retrying in %.0fs", self.account.name, message, wait, exc_info=not _expected(exc))
        state.fail(message)
        try:
            state.save()
        except OSError as save_exc:
            log.error("imap %s: cannot write the status file: %s", self.account.name, save_exc)
        return wait

    def _message(self, exc: Exception) -> str:
        if isinstance(exc, NETWORK_ERRORS):
            return describe(exc, self.account)
        if _expected(exc):
            return str(exc)
        return f"unexpected {type(exc).__name__}: {exc}"


def _new_mail(responses: list) -> bool:
    return any(len(r) > 1 and r[1] == b"EXISTS" for r in responses)


def _worth_waking(responses: list, waited: float) -> bool:
    """New mail (EXISTS), or an early empty return: EOF wakes poll() at once, so leave IDLE and
    let idle_done() tell whether the connection is still there (a resync is cheap)."""
    return _new_mail(responses) or (not responses and waited < IDLE_CHECK / 2)


def _expected(exc: Exception) -> bool:
    return isinstance(exc, (*NETWORK_ERRORS, ImapConnectError, SpoolError))


def start_pollers(
    accounts: list[ImapAccount], spool: Spool, data_dir: Path, stop: StopSignal
) -> list[threading.Thread]:
    """One daemon thread per account; they return within a few seconds of `stop` being set."""
    names = [account.name for account in accounts]
    if len(set(names)) != len(names):
        raise ValueError("two IMAP accounts share a name; each needs its own status file")
    threads = [
        threading.Thread(
            target=ImapPoller(account, spool, data_dir).run, args=(stop,), name=f"imap-{account.name}", daemon=True
        )
        for account in accounts
    ]
    for thread in threads:
        thread.start()
    return threads
