"""The SMTP edge: accept mail for our mailboxes only, and say 250 only once it is in the spool.

Reply codes are named at the top; every failure of ours becomes 451 4.3.0 with a generic text,
because aiosmtpd would otherwise turn an exception into a 5xx that bounces mail and leaks details.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import ssl
import threading
from collections import Counter
from contextlib import suppress
from queue import SimpleQueue

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope as SmtpEnvelope, Session

from ingest.mailboxes import MailboxDirectory
from ingest.spool import Spool, Staged
from models.mail.envelope import Envelope
from models.mail.message import DOT_ATOM_ADDRESS
from models.settings import Settings

log = logging.getLogger("postdesk.smtp")

OK_RCPT = "250 2.1.5 Recipient ok"
NO_SUCH_USER = "550 5.1.1 No such mailbox here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
LOW_DISK = "452 4.3.1 Insufficient system storage, try again later"
OUR_FAULT = "451 4.3.0 Temporary failure, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address"
BAD_SENDER_SYNTAX = "553 5.1.7 Bad sender address syntax"
BAD_RECIPIENT_SYNTAX = "553 5.1.3 Bad recipient address syntax"
NON_ASCII_ADDRESS = "553 5.6.7 Non-ASCII addresses need SMTPUTF8"  # RFC 6531 3.5

# No path in RFC 5321 holds a control character, and one that is not UTF-8 (aiosmtpd hands its
# bytes over as lone surrogates) cannot be stored: refused here, never answered 250 and lost later.
_UNSTORABLE_PATH = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


class _Redact(logging.Filter):
    """aiosmtpd's warnings name the client and may quote a command line: keep hashes instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: object) -> object:
    if isinstance(arg, tuple):
        return f"peer={peer_hash(arg)}"
    if isinstance(arg, (str, bytes)) and len(arg) > 0:
        return f"<{len(arg)} bytes>"
    return arg


def quiet_aiosmtpd_logger() -> None:
    """aiosmtpd logs every command line (addresses included) at INFO: keep only its warnings, redacted."""
    logger = logging.getLogger("mail.log")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _Redact) for f in logger.filters):
        logger.addFilter(_Redact())


def peer_hash(peer: object) -> str:
    host = peer[0] if isinstance(peer, tuple) else str(peer)
    return hashlib.sha256(str(host).encode()).hexdigest()[:12]


def _listening_port(server: asyncio.AbstractServer | None) -> int:
    if not isinstance(server, asyncio.Server):
        raise RuntimeError("the SMTP server is not listening")
    return server.sockets[0].getsockname()[1]


@functools.cache
def _hooks_only(cls: type, prefixes: tuple[str, ...]) -> list[str]:
    """The names aiosmtpd looks for in `dir()`: `handle_*` hooks, `smtp_*` verbs, `auth_*` mechanisms.
    (A class is hashable; mypy checks its instances' `__hash__` instead, hence the ignores of its callers.)"""
    return sorted(name for name in dir(cls) if name.startswith(prefixes))


class PostdeskHandler:
    """aiosmtpd handler hooks: recipient checks, disk check, durable spooling."""

    def __dir__(self) -> list[str]:  # see PostdeskSMTP.__dir__
        return list(_hooks_only(type(self), ("handle_", "auth_")))  # type: ignore[arg-type]  # see _hooks_only

    def __init__(self, settings: Settings, spool: Spool, directory: MailboxDirectory):
        self.settings = settings
        self.spool = spool
        self.directory = directory
        self.connections: Counter = Counter()  # open connections per client address
        self.flusher = SpoolFlusher(spool)

    async def handle_MAIL(self, server, session: Session, envelope: SmtpEnvelope, address: str, options):
        if refusal := _refusal(address, envelope.smtp_utf8, BAD_SENDER_SYNTAX):
            return refusal
        if self.spool.free_bytes() < self.settings.min_free_disk:
            log.warning("spool disk low, deferring mail")
            return LOW_DISK
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(self, server, session: Session, envelope: SmtpEnvelope, address: str, options):
        if refusal := _refusal(address, envelope.smtp_utf8, BAD_RECIPIENT_SYNTAX):
            return refusal
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return TOO_MANY_RECIPIENTS
        if self.directory.resolve(address) is None:
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return OK_RCPT

    async def handle_DATA(self, server, session: Session, envelope: SmtpEnvelope):
        meta = Envelope(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            source="smtp",
            peer=peer_hash(session.peer),
        )
        raw = envelope.original_content or b""  # aiosmtpd sets it before it calls this hook
        try:
            entry_id = await self.flusher.put(raw, meta)
        except Exception:
            log.exception("spool write failed; answered 451")
            return OUR_FAULT
        log.info("accepted %s size=%d rcpts=%d peer=%s", entry_id, len(raw), len(meta.rcpt_tos), meta.peer)
        return f"250 2.0.0 Ok: queued as {entry_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__)
        return OUR_FAULT


def _refusal(address: str, smtputf8: bool, bad_syntax: str) -> str | None:
    """The reply refusing an envelope address we could not store as sent, or None."""
    if _UNSTORABLE_PATH.search(address):
        return bad_syntax
    if not smtputf8 and not address.isascii():
        return NON_ASCII_ADDRESS
    return None


class SpoolFlusher:
    """The SMTP edge's spool puts: the loop hands each entry over, one thread stores them in groups.

    The thread takes every entry handed over meanwhile, commits the group as one spool file (one
    create, one fsync of it and one of new/) and wakes its puts with one call into the loop, which
    never touches the disk. Writer threads running whole puts cost more CPU; writing the entry to
    tmp/ on the loop, the thread only syncing and renaming, saved nothing, as the loop's create and
    the thread's rename spun on the lock of tmp/; a file per group, not per entry, lets a slower
    disk make bigger groups (the figures: bench/results/smtp_edge.md).
    """

    def __init__(self, spool: Spool):
        self.spool = spool
        self._queue: SimpleQueue[tuple[Staged, asyncio.Future] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="smtp-spool", daemon=True)
        self._thread.start()

    async def put(self, raw: bytes, envelope: Envelope) -> str:
        """`Spool.put` for the event loop: the entry's id once it is durable, or a SpoolError."""
        staged = self.spool.stage(raw, envelope)
        durable = asyncio.get_running_loop().create_future()
        self._queue.put((staged, durable))
        await durable
        return staged.id

    def stop(self) -> None:
        """Commit what was handed over, then end the thread; call it once the loop has stopped."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while not self._queue.empty():
                group.append(self._queue.get_nowait())
            puts = [put for put in group if put is not None]
            if puts:
                self._commit(puts)
            if None in group:
                return

    def _commit(self, puts: list[tuple[Staged, asyncio.Future]]) -> None:
        try:
            errors: list = self.spool.commit([staged for staged, _ in puts])
        except Exception as exc:  # a bug here must not leave the puts waiting for ever
            errors = [exc] * len(puts)
        loop = puts[0][1].get_loop()  # the SMTP server's: every put comes from it
        with suppress(RuntimeError):  # the loop is closed: nobody waits for an answer any more
            loop.call_soon_threadsafe(_resolve, puts, errors)


def _resolve(puts: list[tuple[Staged, asyncio.Future]], errors: list[Exception | None]) -> None:
    for (_, durable), error in zip(puts, errors, strict=True):
        if durable.cancelled():  # the session was cut off (shutdown): its entry is stored all the same
            continue
        if error:
            durable.set_exception(error)
        else:
            durable.set_result(None)


class PostdeskSMTP(SMTP):
    """aiosmtpd's SMTP with a longer line limit, a data timeout and a per-address connection cap."""

    line_length_limit = 64 * 1024
    data_timeout = 600.0
    max_per_ip = 20

    def __dir__(self) -> list[str]:
        """Only what aiosmtpd's `__init__` looks for. It runs `inspect.getmembers` (every attribute,
        properties included) and `dir()` over the session object and the handler on each connection,
        holding the GIL for a large share of the edge's time (bench/results/smtp_edge.md)."""
        return list(_hooks_only(type(self), ("smtp_", "auth_")))  # type: ignore[arg-type]  # see _hooks_only

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        host = self._peer_host()
        self.event_handler.connections[host] += 1
        if self.event_handler.connections[host] > self.max_per_ip:
            log.warning("connection cap reached for peer=%s", peer_hash(host))
            transport.write((TOO_MANY_CONNECTIONS + "\r\n").encode())
            transport.close()

    def connection_lost(self, error) -> None:
        host, connections = self._peer_host(), self.event_handler.connections
        connections[host] -= 1
        if connections[host] <= 0:
            del connections[host]
        super().connection_lost(error)

    def _peer_host(self) -> str:
        peer = self.session.peer if self.session else None
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def smtp_DATA(self, arg: str) -> None:
        self._reset_timeout(self.data_timeout)
        await super().smtp_DATA(arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """MAIL FROM and RCPT TO as nearly every client writes them, `<dot.atom@host.name>`,
        without aiosmtpd's RFC 5322 header parser (bench/results/smtp_edge.md); the rest goes to it."""
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        address = plain[1]
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, arg[plain.end() :].lstrip()


_PLAIN_PATH = re.compile(rf"\s*<({DOT_ATOM_ADDRESS})>")


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


class SmtpServer:
    """The SMTP listener in its own thread (aiosmtpd's Controller)."""

    def __init__(self, settings: Settings, spool: Spool, directory: MailboxDirectory):
        quiet_aiosmtpd_logger()
        self.settings = settings
        self.handler = handler = PostdeskHandler(settings, spool, directory)
        smtp_class = type(
            "ConfiguredSMTP",
            (PostdeskSMTP,),
            {
                "line_length_limit": settings.max_line_length,
                "data_timeout": settings.smtp_data_timeout,
                "max_per_ip": settings.max_connections_per_ip,
            },
        )
        tls = _tls_context(settings)
        self.controller = _Controller(
            handler,
            smtp_class,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            server_hostname=settings.smtp_hostname,
            ident="Postdesk ESMTP",
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=settings.smtp_idle_timeout,
            tls_context=tls,
            require_starttls=False,
        )

    def start(self) -> int:
        self.controller.start()
        return _listening_port(self.controller.server)

    def stop(self) -> None:
        self.controller.stop()
        self.handler.flusher.stop()


class _Controller(Controller):
    def __init__(self, handler, smtp_class, **kwargs):
        self.smtp_class = smtp_class
        super().__init__(handler, **kwargs)

    def factory(self):
        return self.smtp_class(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        # The base class opens a test connection to wake the server; with a port of 0 it
        # would connect to port 0, so only do it once the real port is known.
        if self.port == 0:
            self.port = _listening_port(self.server)
        super()._trigger_server()
