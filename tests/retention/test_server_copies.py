"""Erasure reaches the copies Postdesk left on a real IMAP server (Dovecot): kept in the folder
they came from, or moved to another; other people's mail there stays; a server that is down
leaves the erasure unfinished, and running it again finishes it; fetched again, the mail is dropped."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ingest.imap.poller import ImapPoller
from models import Message
from retention.server_copies import ServerCopyError

ANN, BOB = "ann@example.org", "bob@example.net"


def customer_mail(sender: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: Order {n}\r\n"
        f"Message-ID: <imap-erase-{n}@example.org>\r\n\r\nWhere is order {n}?\r\n"
    ).encode()


def fetched(postdesk, account) -> None:
    ImapPoller(account, postdesk.app.spool, postdesk.settings.data_dir).sync_once()
    postdesk.drain()


def erase_ann(postdesk, account):
    engine = postdesk.app.eraser()
    engine.imap_accounts = [account]
    return engine.erase(engine.person(ANN), "delete", "tester")


def subjects(mua, folder: str) -> list[bytes]:
    mua.select_folder(folder)
    return sorted(
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip()
        for data in mua.fetch(mua.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]).values()
    )


def stored(postdesk) -> int:
    with postdesk.app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Message))


def test_their_mail_kept_on_the_server_is_expunged_and_the_others_stays(postdesk, make_account, mua):
    mua.append("INBOX", customer_mail(ANN, 1))
    mua.append("INBOX", customer_mail(BOB, 2))
    mua.append("INBOX", customer_mail(ANN, 3))
    account = make_account(after_import="keep")
    fetched(postdesk, account)

    receipt = erase_ann(postdesk, account)

    assert receipt.counts["imap_expunged"] == 2
    assert subjects(mua, "INBOX") == [b"Subject: Order 2"]


def test_their_mail_moved_to_another_folder_is_found_there_by_its_bytes(postdesk, make_account, mua):
    mua.create_folder("Imported")
    mua.append("INBOX", customer_mail(ANN, 4))
    mua.append("INBOX", customer_mail(BOB, 5))
    mua.append("Imported", customer_mail(ANN, 4).replace(b"Where", b"Not the same bytes: where"))
    account = make_account(after_import="move", move_to="Imported")
    fetched(postdesk, account)

    receipt = erase_ann(postdesk, account)

    assert receipt.counts["imap_expunged"] == 1
    assert subjects(mua, "Imported") == [b"Subject: Order 4", b"Subject: Order 5"]  # the other copy is not ours


def test_a_server_that_is_down_leaves_the_erasure_unfinished_until_it_is_run_again(
    postdesk, make_account, mua, dovecot
):
    mua.append("INBOX", customer_mail(ANN, 6))
    account = make_account(after_import="keep")
    fetched(postdesk, account)
    dovecot.stop()
    try:
        with pytest.raises(ServerCopyError):
            erase_ann(postdesk, account)
        assert stored(postdesk) == 1, "nothing goes before the server copies do"
    finally:
        dovecot.start()
    receipt = erase_ann(postdesk, account)
    assert (receipt.counts["imap_expunged"], receipt.counts["messages"], stored(postdesk)) == (1, 1, 0)


def test_the_same_mail_fetched_again_after_a_uidvalidity_change_is_dropped(postdesk, make_account, mua):
    raw = customer_mail(ANN, 7)
    mua.append("INBOX", raw)
    account = make_account(after_import="keep")
    fetched(postdesk, account)
    erase_ann(postdesk, account)

    mua.create_folder("Restored")
    mua.append("Restored", raw)  # the mailbox restored from the server's backup, under a new UIDVALIDITY
    fetched(postdesk, make_account(after_import="keep", folders=["Restored"]))

    assert stored(postdesk) == 0 and postdesk.runner.stats["erased"] == 1
