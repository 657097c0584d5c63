"""Opening a secured, logged-in IMAP connection, and saying in plain words why it failed.

The login step is a strategy (`LoginStrategy`: client, account → None) so OAuth2 (XOAUTH2 via
`client.oauth2_login`) can be added without touching the poller.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientAbortError, IMAPClientError, LoginError

from models.settings import ImapAccount

LoginStrategy = Callable[[IMAPClient, ImapAccount], None]

# What a network session can raise; anything else is a bug (the poller still survives it).
NETWORK_ERRORS = (OSError, IMAPClientError)


class ImapConnectError(Exception):
    """Could not connect, secure the connection or log in; the message is meant for people."""


class ImapLoginError(ImapConnectError):
    """The server rejected the credentials: retrying soon would only hammer it."""


def password_login(client: IMAPClient, account: ImapAccount) -> None:
    client.login(account.username, account.password.get_secret_value())


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    """Verification always on; `ca_file` replaces the system trust store."""
    return ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)


def open_client(account: ImapAccount) -> IMAPClient:
    """Connected and (unless "plain") encrypted, not yet logged in; every socket op times out."""
    context = None if account.tls == "plain" else tls_context(account)
    client = IMAPClient(
        account.host,
        port=account.server_port,
        ssl=account.tls == "implicit",
        ssl_context=context,
        timeout=account.timeout,
    )
    if account.tls == "starttls":
        try:
            client.starttls(context)
        except BaseException:
            shutdown_quietly(client)
            raise
    return client


def connect(account: ImapAccount, login: LoginStrategy = password_login) -> IMAPClient:
    """A logged-in client, or ImapConnectError / ImapLoginError with a readable reason."""
    try:
        client = open_client(account)
    except NETWORK_ERRORS as exc:
        raise ImapConnectError(describe(exc, account)) from exc
    try:
        login(client, account)
    except NETWORK_ERRORS as exc:
        shutdown_quietly(client)
        error = ImapLoginError if _rejected(exc) else ImapConnectError
        raise error(describe(exc, account)) from exc
    return client


def _rejected(exc: BaseException) -> bool:
    """A LoginError wraps connection drops during LOGIN too; only a server NO is a rejection."""
    return isinstance(exc, LoginError) and not isinstance(exc.__context__, IMAPClientAbortError)


def describe(exc: BaseException, account: ImapAccount) -> str:
    """One line for the log, the status file and `postdesk imap test`; no addresses in it."""
    where = f"{account.host}:{account.server_port}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed for {account.host} ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed for {where}: {exc.verify_message}"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return f"{where} closed the connection during the TLS handshake"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {account.timeout:g}s"
    if isinstance(exc, LoginError) and _rejected(exc):
        return f"login failed: the server said {str(exc)[:200]}"
    if isinstance(exc, CapabilityError):
        return f"{where}: {exc}"
    if isinstance(exc, (IMAPClientAbortError, ConnectionError, EOFError)):
        return f"connection to {where} lost ({exc})"
    if isinstance(exc, OSError):
        return f"network error with {where}: {exc.strerror or exc}"
    return f"IMAP error from {where}: {str(exc)[:200]}"


def shutdown_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except OSError:
        pass


def close(client: IMAPClient) -> None:
    """LOGOUT when the connection still works, else just drop it."""
    try:
        client.logout()
    except NETWORK_ERRORS:
        shutdown_quietly(client)
