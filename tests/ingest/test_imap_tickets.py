"""IMAP end to end: mail in a real Dovecot mailbox becomes tickets, once, through `postdesk serve`."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from ingest.imap.poller import ImapPoller
from ingest.spool import Spool
from models import ImapCopy, Message
from models.db import Database
from waiting import wait_for


def customer_mail(n: int) -> bytes:
    return (
        f"From: customer{n}@example.org\r\nTo: support@example.com\r\nSubject: Order {n} is late\r\n"
        f"Message-ID: <imap-e2e-{n}@example.org>\r\n\r\nWhere is my order {n}?\r\n"
    ).encode()


def tickets_with(db: Database, n: int) -> list[int]:
    with db.read() as session:
        return session.scalars(
            select(Message.ticket_id).where(Message.message_id_header == f"imap-e2e-{n}@example.org")
        ).all()


def wait_for_ticket(db: Database, n: int, timeout: float) -> float:
    """Seconds until message `n` is on a ticket."""
    started = time.monotonic()
    wait_for(lambda: tickets_with(db, n), timeout, what=f"message {n} on a ticket")
    return time.monotonic() - started


def test_serve_turns_mailbox_mail_into_tickets_and_idle_within_five_seconds(
    settings, make_account, mua, tmp_path, monkeypatch, serve, dovecot, imap_user
):
    mua.append("INBOX", customer_mail(1))
    account = make_account(initial_sync="all", after_import="move", move_to="Imported")
    mua.create_folder("Imported")
    account_json = json.loads(account.model_dump_json())
    account_json["password"] = account.password.get_secret_value()
    monkeypatch.setenv("POSTDESK_IMAP_ACCOUNTS", json.dumps([account_json]))
    server = serve()
    db = Database(settings.sqlalchemy_url)
    try:
        wait_for_ticket(db, 1, timeout=60)
        wait_for(lambda: dovecot.idling(imap_user), what="serve's poller in IDLE")
        mua.append("INBOX", customer_mail(2))
        assert wait_for_ticket(db, 2, timeout=10) < 5.0
    finally:
        db.dispose()
        assert server.terminate() == 0
    mua.select_folder("Imported")
    assert len(mua.search("ALL")) == 2
    mua.select_folder("INBOX")
    assert mua.search("ALL") == []


class CrashAfterSpool(Spool):
    def put(self, raw, envelope):
        super().put(raw, envelope)
        raise KeyboardInterrupt("killed after the spool write, before the flag")


def test_a_poller_killed_between_spool_and_flag_still_makes_one_ticket(postdesk, make_account, mua):
    mua.append("INBOX", customer_mail(3))
    account = make_account(initial_sync="all")
    data_dir = postdesk.settings.data_dir
    try:
        ImapPoller(account, CrashAfterSpool(postdesk.app.spool.root), data_dir).sync_once()
    except KeyboardInterrupt:
        pass
    ImapPoller(account, postdesk.app.spool, data_dir).sync_once()
    postdesk.drain()
    assert len(tickets_with(postdesk.app.db, 3)) == 1
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_message_fetched_over_imap_keeps_where_it_lies_on_the_server(postdesk, make_account, mua):
    mua.append("INBOX", customer_mail(4))
    mua.append("INBOX", customer_mail(5))
    uidvalidity = mua.select_folder("INBOX")[b"UIDVALIDITY"]
    uids = sorted(mua.search("ALL"))
    ImapPoller(make_account(name="helpdesk"), postdesk.app.spool, postdesk.settings.data_dir).sync_once()
    postdesk.drain()
    with postdesk.app.db.read() as session:
        copies = session.execute(
            select(Message.message_id_header, ImapCopy.account, ImapCopy.folder, ImapCopy.uidvalidity, ImapCopy.uid)
            .join(ImapCopy, ImapCopy.message_id == Message.id)
            .order_by(ImapCopy.uid)
        ).all()
    assert [tuple(c) for c in copies] == [
        (f"imap-e2e-{n}@example.org", "helpdesk", "INBOX", uidvalidity, uid)
        for n, uid in zip((4, 5), uids, strict=True)
    ]
