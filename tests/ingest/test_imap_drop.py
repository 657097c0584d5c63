"""The IMAP server's connection dropping in the middle of a FETCH response: reconnect, nothing lost."""

from __future__ import annotations

import socket
import threading

from ingest.imap.poller import ImapPoller
from ingest.spool import Spool
from test_imap import Running, crlf, message, spooled, wait_for


class CuttingProxy:
    """A TCP proxy in front of Dovecot that cuts its first connection once the server has sent
    `cut_after` bytes following the client's first FETCH; later connections pass untouched."""

    def __init__(self, target_port: int, cut_after: int):
        self.target_port, self.cut_after = target_port, cut_after
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            cutting = self.cuts == 0
            fetch_seen = threading.Event()
            threading.Thread(target=self._up, args=(client, server, fetch_seen), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, fetch_seen, cutting), daemon=True).start()

    def _up(self, client, server, fetch_seen) -> None:
        while data := _recv(client):
            if b"FETCH" in data.upper():
                fetch_seen.set()
            server.sendall(data)
        _close(client, server)

    def _down(self, server, client, fetch_seen, cutting) -> None:
        sent_after_fetch = 0
        while data := _recv(server):
            if cutting and fetch_seen.is_set():
                sent_after_fetch += len(data)
                if sent_after_fetch > self.cut_after:
                    self.cuts += 1
                    client.sendall(data[: len(data) // 2])
                    break
            client.sendall(data)
        _close(client, server)

    def close(self) -> None:
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def test_a_connection_dropped_mid_fetch_reconnects_and_loses_nothing(make_account, mua, dovecot, tmp_path):
    originals = [message(n, b"line of a long report\n" * 20000) for n in range(4)]  # ~440 KB each
    for raw in originals:
        mua.append("INBOX", raw)
    proxy = CuttingProxy(dovecot.plain_port, cut_after=200_000)
    spool = Spool(tmp_path / "spool")
    account = make_account(port=proxy.port, tls="plain", ca_file=None, fetch_batch=4)
    try:
        with Running(ImapPoller(account, spool, tmp_path / "data")):
            wait_for(lambda: len(spooled(spool)) >= 4, timeout=30, what="all four after the reconnect")
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert sorted(spooled(spool)) == sorted(crlf(raw) for raw in originals)
