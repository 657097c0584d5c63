"""The copies of erased mail Postdesk left on IMAP servers: found, checked and expunged.

Where a copy lies depends on the account's `after_import`: "keep" leaves it in the folder it was
fetched from, under the UID recorded with the message (valid while the folder's UIDVALIDITY is);
"move" put it in `move_to` under a UID we never learned, so it is looked up there by Message-ID;
"delete" left nothing. Every candidate's bytes are fetched and compared with the stored message's
sha256 before it is flagged \\Deleted and removed with UID EXPUNGE (our own UIDs only, as the
poller does): a UID or a Message-ID alone never removes someone else's mail.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from imapclient import IMAPClient

from ingest.imap.connect import NETWORK_ERRORS, ImapConnectError, close, connect, describe
from ingest.imap.sync import delete
from models.mail.parse import raw_sha256
from models.settings import ImapAccount

log = logging.getLogger("postdesk.erasure")


class ServerCopyError(Exception):
    """An IMAP server holding erased mail could not be reached or refused; the message is for people."""


@dataclass(frozen=True)
class ServerCopy:
    """A stored message's copy on a server, with what identifies its bytes."""

    message_id: int
    account: str
    folder: str
    uidvalidity: int
    uid: int
    message_id_header: str
    sha256: str


@dataclass
class Removed:
    expunged: int = 0
    already_gone: int = 0  # not on the server any more (deleted by someone, or "delete" accounts)
    unreachable: int = 0  # their account is no longer configured: nothing can log in to remove them


def remove_server_copies(
    copies: list[ServerCopy], accounts: list[ImapAccount], open_client: Callable[[ImapAccount], IMAPClient] = connect
) -> Removed:
    """Remove these copies from their servers; raises `ServerCopyError` when a server cannot be
    reached (the erasure stops there and finishes when run again)."""
    removed = Removed()
    configured = {a.name: a for a in accounts}
    by_account: dict[str, list[ServerCopy]] = defaultdict(list)
    for copy in copies:
        by_account[copy.account].append(copy)
    for name, held in sorted(by_account.items()):
        account = configured.get(name)
        if account is None:
            log.warning("imap %s is no longer configured: %d copies of erased mail cannot be removed", name, len(held))
            removed.unreachable += len(held)
        elif account.after_import == "delete":
            removed.already_gone += len(held)
        else:
            _remove_from(account, held, open_client, removed)
    return removed


def _remove_from(account: ImapAccount, copies: list[ServerCopy], open_client, removed: Removed) -> None:
    try:
        client = open_client(account)
    except ImapConnectError as exc:
        raise ServerCopyError(f"IMAP account {account.name}: {exc}") from exc
    try:
        by_folder: dict[str, list[ServerCopy]] = defaultdict(list)
        for copy in copies:
            moved_to = account.move_to if account.after_import == "move" else None
            by_folder[moved_to or copy.folder].append(copy)
        for folder, held in sorted(by_folder.items()):
            uids = _matching_uids(client, account, folder, held)
            if uids:
                delete(client, account, uids)
            removed.expunged += len(uids)
            removed.already_gone += len(held) - len(uids)
            log.info("imap %s/%s: %d copies of erased mail expunged", account.name, folder, len(uids))
    except NETWORK_ERRORS as exc:
        raise ServerCopyError(f"IMAP account {account.name}: {describe(exc, account)}") from exc
    finally:
        close(client)


def _matching_uids(client: IMAPClient, account: ImapAccount, folder: str, copies: list[ServerCopy]) -> list[int]:
    """The UIDs in `folder` whose bytes are those of `copies`."""
    if not client.folder_exists(folder):
        return []
    uidvalidity = client.select_folder(folder)[b"UIDVALIDITY"]
    candidates: set[int] = set()
    for copy in copies:
        if account.after_import == "keep" and copy.uidvalidity == uidvalidity:
            candidates.add(copy.uid)
        elif copy.message_id_header:
            candidates.update(client.search(["HEADER", "Message-ID", copy.message_id_header]))
    if not candidates:
        return []
    wanted = {copy.sha256 for copy in copies}
    fetched = client.fetch(sorted(candidates), ["BODY.PEEK[]"])
    return sorted(uid for uid, data in fetched.items() if data.get(b"BODY[]") and raw_sha256(data[b"BODY[]"]) in wanted)
