"""The SMTP edge: accept mail for our mailboxes only, and say 250 only once it is in the spool.

Reply codes are named at the top; every failure of ours becomes 451 4.3.0 with a generic text,
because aiosmtpd would otherwise turn an exception into a 5xx that bounces mail and leaks details.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope as SmtpEnvelope, Session

from ingest.mailboxes import MailboxDirectory
from ingest.spool import Envelope, Spool
from postdesk.settings import Settings

log = logging.getLogger("postdesk.smtp")

OK_RCPT = "250 2.1.5 Recipient ok"
NO_SUCH_USER = "550 5.1.1 No such mailbox here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
LOW_DISK = "452 4.3.1 Insufficient system storage, try again later"
OUR_FAULT = "451 4.3.0 Temporary failure, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address"

SPOOL_WRITERS = 32


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


class PostdeskHandler:
    """aiosmtpd handler hooks: recipient checks, disk check, durable spooling."""

    def __init__(self, settings: Settings, spool: Spool, directory: MailboxDirectory):
        self.settings = settings
        self.spool = spool
        self.directory = directory
        self.connections: Counter = Counter()  # open connections per client address
        # The loop's default executor has cpu+4 threads (6 here), which capped concurrent spool
        # writes at 6 while 32 clients waited; fsyncs in flight together share journal commits.
        self.writers = ThreadPoolExecutor(SPOOL_WRITERS, thread_name_prefix="smtp-spool")

    async def handle_MAIL(self, server, session: Session, envelope: SmtpEnvelope, address: str, options):
        if self.spool.free_bytes() < self.settings.min_free_disk:
            log.warning("spool disk low, deferring mail")
            return LOW_DISK
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(self, server, session: Session, envelope: SmtpEnvelope, address: str, options):
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
        try:
            loop = asyncio.get_running_loop()
            entry_id = await loop.run_in_executor(self.writers, self.spool.put,
                                                  envelope.original_content, meta)
        except Exception:
            log.exception("spool write failed; answered 451")
            return OUR_FAULT
        log.info("accepted %s size=%d rcpts=%d peer=%s", entry_id, len(envelope.original_content),
                 len(meta.rcpt_tos), meta.peer)
        return f"250 2.0.0 Ok: queued as {entry_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__)
        return OUR_FAULT


class PostdeskSMTP(SMTP):
    """aiosmtpd's SMTP with a longer line limit, a data timeout and a per-address connection cap."""

    line_length_limit = 64 * 1024
    data_timeout = 600.0
    max_per_ip = 20

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
        smtp_class = type("ConfiguredSMTP", (PostdeskSMTP,), {
            "line_length_limit": settings.max_line_length,
            "data_timeout": settings.smtp_data_timeout,
            "max_per_ip": settings.max_connections_per_ip,
        })
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
        return self.controller.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.controller.stop()
        self.handler.writers.shutdown(wait=True)


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
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
