"""The SMTP edge, spoken to with smtplib and raw sockets: what a sending MTA sees."""

from __future__ import annotations

import errno
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from conftest import Harness
from ingest.mailboxes import MailboxDirectory
from ingest.smtp import SmtpServer
from ingest.spool import Spool
from models import Message
from tls import make_ca

SIMPLE = (
    b"From: Customer <customer@example.org>\r\nTo: support@example.com\r\nSubject: Help\r\n"
    b"Message-ID: <simple-1@example.org>\r\n\r\nMy printer is on fire.\r\n"
)


def stored(harness: Harness, **where) -> list[Message]:
    with harness.app.db.read() as session:
        query = select(Message)
        for column, value in where.items():
            query = query.where(getattr(Message, column) == value)
        return session.scalars(query).all()


def raw_stored(harness: Harness, message: Message) -> bytes:
    with harness.app.db.read() as session:
        return harness.app.store.raw_of(session, message.id)


def test_accepted_mail_is_stored_and_the_reply_names_the_spool_entry(postdesk):
    code, reply = postdesk.send(SIMPLE)
    assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as ")
    postdesk.drain()
    [message] = stored(postdesk)
    assert message.spool_id == reply.split()[-1].decode()
    assert message.subject == "Help" and message.envelope_from == "customer@example.org"
    assert raw_stored(postdesk, message) == SIMPLE


@pytest.mark.parametrize(
    "rcpt",
    [
        "support@example.com",
        "SUPPORT@Example.COM",
        "support+urgent@example.com",
        "help@example.com",
        "billing@example.com",
    ],
)
def test_our_addresses_in_every_spelling_are_accepted(postdesk, rcpt):
    with postdesk.client() as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt(rcpt)[0] == 250


@pytest.mark.parametrize("rcpt", ["sales@example.com", "support@example.net", "support", "@example.com"])
def test_other_recipients_get_550(postdesk, rcpt):
    with postdesk.client() as client:
        client.ehlo()
        client.mail("a@example.org")
        code, reply = client.rcpt(rcpt)
        assert (code, reply[:5]) in ((550, b"5.1.1"), (553, reply[:5]), (501, reply[:5]))


def test_recipient_cap_answers_452(settings):
    harness = Harness(settings.model_copy(update={"max_recipients": 3}))
    try:
        with harness.client() as client:
            client.ehlo()
            client.mail("a@example.org")
            codes = [client.rcpt(f"support+{i}@example.com") for i in range(4)]
        assert [c for c, _ in codes] == [250, 250, 250, 452]
        assert codes[-1][1].startswith(b"4.5.3")
    finally:
        harness.close()


def test_size_is_advertised_and_an_oversized_message_gets_552_and_is_not_stored(settings):
    harness = Harness(settings.model_copy(update={"max_message_size": 4096}))
    try:
        with harness.client() as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "4096"
            client.mail("a@example.org")
            client.rcpt("support@example.com")
            code, _ = client.data(SIMPLE + b"x" * 5000 + b"\r\n")
        assert code == 552
        harness.drain()
        assert stored(harness) == [] and harness.app.spool.depth()["new"] == 0
    finally:
        harness.close()


def test_lines_longer_than_998_octets_are_accepted_intact(postdesk):
    long_line = b"A" * 20000
    raw = SIMPLE.replace(b"My printer", long_line + b"\r\nMy printer")
    assert postdesk.send(raw)[0] == 250
    postdesk.drain()
    [message] = stored(postdesk)
    assert raw_stored(postdesk, message) == raw


def _raw_session(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"EHLO test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n")
        sock.sendall(payload)
        sock.sendall(b"QUIT\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("bad_end", [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n"])
def test_hostile_end_of_data_never_splits_one_message_into_two(postdesk, bad_end):
    smuggled = (
        b"Subject: outer\r\nMessage-ID: <outer@example.org>\r\n\r\nhello"
        + bad_end
        + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\ninner\r\n.\r\n"
    )
    replies = _raw_session(postdesk.port, smuggled)
    assert replies.count(b"250 2.0.0 Ok: queued") == 1
    postdesk.drain()
    [message] = stored(postdesk)
    assert message.subject == "outer"


class Edge:
    """The SMTP server alone, without a runner: what it spools stays in new/."""

    def __init__(self, settings):
        self.spool = Spool(settings.spool_dir)
        self.server = SmtpServer(settings, self.spool, MailboxDirectory(settings.mailboxes))
        self.port = self.server.start()

    def send(self, raw: bytes) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.ehlo()
            client.mail("customer@example.org")
            client.rcpt("support@example.com")
            return client.data(raw)

    def left_behind(self) -> list[str]:
        return self.spool.pending() + os.listdir(self.spool.root / "tmp")


@pytest.fixture
def edge(settings):
    edge = Edge(settings)
    yield edge
    edge.server.stop()


def test_a_failing_disk_answers_451_with_a_generic_text_and_keeps_nothing(edge, monkeypatch):
    def broken_disk(path, data):
        raise OSError(errno.EIO, "Input/output error at /secret/path")

    monkeypatch.setattr("ingest.spool.create_durably", broken_disk)
    code, reply = edge.send(SIMPLE)
    assert code == 451 and reply.startswith(b"4.3.0") and b"secret" not in reply
    assert edge.left_behind() == []
    monkeypatch.undo()
    assert edge.send(SIMPLE)[0] == 250  # the disk is back: so is the edge


def test_a_failing_folder_fsync_answers_451_and_leaves_nothing_in_new(edge, monkeypatch):
    def broken_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    code, reply = edge.send(SIMPLE)
    assert code == 451 and reply.startswith(b"4.3.0")
    assert edge.left_behind() == []


def test_many_clients_at_once_all_get_250_and_every_entry_holds_its_bytes(settings):
    edge = Edge(settings.model_copy(update={"max_connections_per_ip": 32}))
    messages = [SIMPLE.replace(b"simple-1", b"many-%d" % n) for n in range(160)]
    try:
        with ThreadPoolExecutor(32) as clients:
            replies = list(clients.map(edge.send, messages))
    finally:
        edge.server.stop()
    assert {code for code, _ in replies} == {250}
    ids = [reply.split()[-1].decode() for _, reply in replies]
    waiting = {entry.id: entry for entry in edge.spool.waiting()}
    assert sorted(ids) == sorted(waiting)
    entries = [waiting[entry_id] for entry_id in ids]
    assert [entry.raw for entry in entries] == messages
    assert all(entry.envelope.rcpt_tos == ["support@example.com"] for entry in entries)


def test_stop_finishes_the_puts_it_finds_waiting(settings, monkeypatch):
    edge = Edge(settings)
    commit, entered, go_on = edge.spool.commit, threading.Event(), threading.Event()

    def slow_commit(group):
        entered.set()
        go_on.wait(10)
        return commit(group)

    monkeypatch.setattr(edge.spool, "commit", slow_commit)
    heard = []
    sender = threading.Thread(target=lambda: heard.append(_reply_or_error(edge.send, SIMPLE)))
    sender.start()
    assert entered.wait(10)
    threading.Timer(0.3, go_on.set).start()
    edge.server.stop()
    assert go_on.is_set() and len(edge.spool.pending()) == 1  # stored, though no 250 was sent
    sender.join(10)
    assert heard == [smtplib.SMTPServerDisconnected]


def _reply_or_error(send, raw: bytes):
    try:
        return send(raw)
    except smtplib.SMTPException as exc:
        return type(exc)


def test_low_disk_answers_452_before_the_spool_fills_the_disk(settings):
    harness = Harness(settings.model_copy(update={"min_free_disk": 2**62}))
    try:
        with harness.client() as client:
            client.ehlo()
            code, reply = client.mail("a@example.org")
        assert code == 452 and reply.startswith(b"4.3.1")
    finally:
        harness.close()


def test_starttls_with_a_configured_certificate(settings, tmp_path):
    ca = make_ca(tmp_path / "tls")
    harness = Harness(settings.model_copy(update={"tls_cert": ca.server_cert, "tls_key": ca.server_key}))
    try:
        with harness.client() as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=ssl.create_default_context(cafile=str(ca.ca_cert)))
            client.ehlo()
            client.mail("a@example.org")
            client.rcpt("support@example.com")
            assert client.data(SIMPLE)[0] == 250
    finally:
        harness.close()


def test_smtputf8_senders_are_accepted(postdesk):
    raw = "From: José <josé@exämple.org>\r\nSubject: Olá\r\n\r\nObrigado\r\n".encode()
    with postdesk.client() as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        client.mail("josé@exämple.org", ["SMTPUTF8"])
        client.rcpt("support@example.com")
        assert client.data(raw)[0] == 250


def test_connections_per_client_address_are_capped(settings):
    harness = Harness(settings.model_copy(update={"max_connections_per_ip": 2}))
    try:
        first, second = harness.client(), harness.client()
        with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as third:
            assert third.recv(1024).startswith(b"421 4.7.0")
        first.quit()
        second.quit()
    finally:
        harness.close()


def test_an_idle_client_is_cut_off(settings):
    harness = Harness(settings.model_copy(update={"smtp_idle_timeout": 1.0}))
    try:
        with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
            assert sock.recv(1024).startswith(b"220")
            started = time.monotonic()
            assert sock.recv(1024) == b""  # the server closed the connection
            assert time.monotonic() - started < 10  # ten times the idle timeout
    finally:
        harness.close()


def test_logs_carry_ids_never_addresses_or_subjects(postdesk, caplog):
    caplog.set_level(logging.INFO)
    postdesk.send(SIMPLE, sender="very.private.person@example.org")
    postdesk.drain()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "accepted" in text
    assert "very.private.person" not in text and "Help" not in text and "example.com" not in text


def test_the_same_bytes_twice_are_stored_once(postdesk):
    postdesk.send(SIMPLE)
    postdesk.send(SIMPLE)
    postdesk.drain()
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_aiosmtpd_warnings_keep_client_addresses_and_commands_out(postdesk, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(("127.0.0.1", postdesk.port), timeout=10) as sock:
        sock.recv(1024)
        sock.sendall(b"XSECRET leaky.person@example.org\r\nQUIT\r\n")
        while sock.recv(1024):
            pass
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "mail.log")
    assert "leaky.person" not in text and "XSECRET" not in text and "127.0.0.1" not in text


def _command(port: int, *lines: bytes) -> list[bytes]:
    """Each command line's reply, spoken over a raw socket (smtplib refuses to send some of these bytes)."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO test\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        for line in lines:
            sock.sendall(line + b"\r\n")
            replies.append(reader.readline().rstrip(b"\r\n"))
    return replies


@pytest.mark.parametrize(
    "path",
    [
        b"<a\x00b@example.org>",
        b'<"a\x00b"@example.org>',
        b"<a@exam\x00ple.org>",
        b"<a\x01b@example.org>",
        b'<"a\x7fb"@example.org>',
        b'<"tab\there"@example.org>',
    ],
)
def test_a_sender_with_control_characters_is_refused_at_the_edge(postdesk, path):
    [reply] = _command(postdesk.port, b"MAIL FROM:" + path)
    assert reply[:3] in (b"501", b"553") and reply[4:5] == b"5", reply


@pytest.mark.parametrize("path", ["<josé@example.org>", "<a@exämple.org>", '<"jo sé"@example.org>'])
def test_an_8bit_sender_without_smtputf8_is_refused_with_5_6_7(postdesk, path):
    [reply] = _command(postdesk.port, b"MAIL FROM:" + path.encode())
    assert reply.startswith(b"553 5.6.7"), reply


def test_a_sender_that_is_not_utf8_is_refused_even_with_smtputf8(postdesk):
    [reply] = _command(postdesk.port, b"MAIL FROM:<jos\xe9@example.org> SMTPUTF8")
    assert reply[:3] == b"553", reply


@pytest.mark.parametrize("path", [b"<support\x00@example.com>", "<süpport@example.com>".encode()])
def test_a_recipient_with_control_characters_or_undeclared_8bit_is_refused(postdesk, path):
    _, reply = _command(postdesk.port, b"MAIL FROM:<a@example.org>", b"RCPT TO:" + path)
    assert reply[:3] in (b"501", b"553"), reply


def test_an_8bit_sender_with_smtputf8_is_stored_as_sent(postdesk):
    with postdesk.client() as client:
        client.ehlo()
        client.mail("josé@exämple.org", ["SMTPUTF8"])
        client.rcpt("support@example.com")
        assert client.data(SIMPLE)[0] == 250
    postdesk.drain()
    [message] = stored(postdesk)
    assert message.envelope_from == "josé@exämple.org"


def test_every_sender_the_edge_accepts_is_stored_on_either_database(postdesk):
    """What the edge answers 250 to must never end in spool/bad (a NUL once did, on PostgreSQL)."""
    senders = [
        b"<a\x00b@example.org>",
        b'<"odd \\" quoted"@example.org>',
        b"<>",
        b"<a@[127.0.0.1]>",
        "<josé@example.org>".encode(),
        b"<jos\xe9@example.org>",
        b"<a@b>",
    ]
    accepted = []
    for sender in senders:
        for option in (b"", b" SMTPUTF8"):
            replies = _command(
                postdesk.port,
                b"MAIL FROM:" + sender + option,
                b"RCPT TO:<support@example.com>",
                b"DATA",
                SIMPLE.replace(b"simple-1", sender.hex().encode() + option.strip()) + b".",
            )
            if replies[0].startswith(b"250"):
                assert replies[3].startswith(b"250"), replies
                accepted.append(sender + option)
    postdesk.drain()
    assert postdesk.app.spool.depth()["bad"] == 0
    assert len(stored(postdesk)) == len(accepted) >= 6
