"""One pass over one folder, in the order that never loses mail:

  UID SEARCH UID last+1:*  →  UID FETCH RFC822.SIZE, then BODY.PEEK[] (one batch at a time)
  →  spool.put (fsynced)  →  state saved (last UID, UIDs pending clean-up)  →  \\Seen / MOVE / delete

A crash before the state is saved re-fetches that batch (the pipeline drops the duplicate by its
sha256); a crash after it only repeats the clean-up, which is idempotent. \\Seen is never trusted:
other clients read mail too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from ingest.imap.state import AccountState, FolderState
from ingest.spool import Spool
from models.mail.envelope import Envelope
from models.settings import ImapAccount

log = logging.getLogger("postdesk.imap")

SEEN, DELETED = b"\\Seen", b"\\Deleted"


def chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class FolderSync:
    """Fetches what is new in the folders of one account over one logged-in connection."""

    def __init__(self, client: IMAPClient, account: ImapAccount, spool: Spool, state: AccountState):
        self.client, self.account, self.spool, self.state = client, account, spool, state
        self.envelope: dict[str, Any] = dict(
            source="imap", mail_from="", rcpt_tos=[account.mailbox], peer=f"imap:{account.name}"
        )
        self.uidnext: dict[str, int | None] = {}  # per folder, as its SELECT said at the start of its sync

    def run(self, folder: str) -> int:
        """Import the new messages of `folder`; returns how many reached the spool."""
        fs = self.state.folder(folder)
        info = self.client.select_folder(folder)
        self.uidnext[folder] = info.get(b"UIDNEXT")
        self._check_uidvalidity(folder, fs, info)
        self._clean_up(folder, fs)
        imported = 0
        for batch in chunks(self._new_uids(fs), self.account.fetch_batch):
            imported += self._import_batch(folder, fs, batch)
        fs.last_sync, fs.last_error = time.time(), None
        self.state.save()
        return imported

    def _check_uidvalidity(self, folder: str, fs: FolderState, info: dict) -> None:
        uidvalidity = info[b"UIDVALIDITY"]
        if fs.uidvalidity == uidvalidity:
            return
        if fs.uidvalidity is None:
            fs.last_uid = 0 if self.account.initial_sync == "all" else self._highest_uid(info)
            log.info("imap %s/%s: first connection, starting after UID %d", self.account.name, folder, fs.last_uid)
        else:
            log.warning("imap %s/%s: UIDVALIDITY changed, fetching the whole folder again", self.account.name, folder)
            fs.last_uid = 0
        fs.uidvalidity, fs.pending = uidvalidity, []
        self.state.save()

    def _highest_uid(self, info: dict) -> int:
        if b"UIDNEXT" in info:
            return info[b"UIDNEXT"] - 1
        return max(self.client.search(["ALL"]), default=0)

    def _new_uids(self, fs: FolderState) -> list[int]:
        # "n:*" always matches the last message, even when its UID is below n.
        found = self.client.search(["UID", f"{fs.last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > fs.last_uid)

    def _import_batch(self, folder: str, fs: FolderState, batch: list[int]) -> int:
        bodies = self._fetch_bodies(fs, self._small_enough(fs, batch))
        spooled = [uid for uid in batch if uid in bodies]
        for uid in spooled:
            where = {"account": self.account.name, "folder": folder, "uidvalidity": fs.uidvalidity, "uid": uid}
            self.spool.put(bodies[uid], Envelope(**self.envelope, imap=where))
        fs.last_uid = batch[-1]
        fs.imported += len(spooled)
        fs.pending += spooled
        self.state.save()
        log.info("imap %s/%s: spooled %d of UIDs %d-%d", self.account.name, folder, len(spooled), batch[0], batch[-1])
        self._clean_up(folder, fs)
        return len(spooled)

    def _small_enough(self, fs: FolderState, batch: list[int]) -> list[int]:
        sizes = self.client.fetch(batch, ["RFC822.SIZE"])
        wanted = []
        for uid in batch:
            size = sizes.get(uid, {}).get(b"RFC822.SIZE")
            if size is None:
                self._skip(fs, uid, "gone before it could be fetched")
            elif size > self.account.max_message_size:
                self._skip(fs, uid, f"{size} bytes, over max_message_size")
            else:
                wanted.append(uid)
        return wanted

    def _fetch_bodies(self, fs: FolderState, uids: list[int]) -> dict[int, bytes]:
        """BODY.PEEK[] for the batch; when the server refuses it, one by one to find the culprit."""
        if not uids:
            return {}
        try:
            fetched = self.client.fetch(uids, ["BODY.PEEK[]"])
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            if len(uids) == 1:
                self._skip(fs, uids[0], f"server refused to fetch it: {str(exc)[:200]}")
                return {}
            return {k: v for uid in uids for k, v in self._fetch_bodies(fs, [uid]).items()}
        bodies = {uid: data.get(b"BODY[]") for uid, data in fetched.items() if uid in uids}
        for uid in uids:
            if not bodies.get(uid):
                self._skip(fs, uid, "server returned no body")
        return {uid: raw for uid, raw in bodies.items() if raw}

    def _skip(self, fs: FolderState, uid: int, reason: str) -> None:
        log.warning("imap %s: skipped UID %d: %s", self.account.name, uid, reason)
        fs.skip(uid, reason)

    def _clean_up(self, folder: str, fs: FolderState) -> None:
        """The after-import action for spooled UIDs; a refusal is recorded, fetching goes on."""
        if not fs.pending:
            return
        try:
            after_import(self.client, self.account, fs.pending)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            fs.last_error = f"{self.account.after_import} after import failed: {str(exc)[:200]}"
            log.warning("imap %s/%s: %s", self.account.name, folder, fs.last_error)
            return
        fs.pending = []  # saved with the next batch or at the end of the pass; repeating is harmless


def after_import(client: IMAPClient, account: ImapAccount, uids: list[int]) -> None:
    if account.after_import == "keep":
        client.add_flags(uids, [SEEN], silent=True)
    elif account.after_import == "move":
        move(client, account, uids)
    else:
        delete(client, account, uids)


def move(client: IMAPClient, account: ImapAccount, uids: list[int]) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, account.move_to)
        return
    client.copy(uids, account.move_to)
    delete(client, account, uids)


def delete(client: IMAPClient, account: ImapAccount, uids: list[int]) -> None:
    """Expunge our own UIDs only: a bare EXPUNGE would also remove other clients' \\Deleted mail."""
    client.add_flags(uids, [SEEN, DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        log.warning(
            "imap %s: server lacks UIDPLUS: %d messages flagged \\Deleted but not expunged",
            account.name,
            len(uids),
        )
