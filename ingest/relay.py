"""The outbound SMTP relay: hands one message to it, over STARTTLS, implicit TLS or (on loopback)
plain SMTP, with a login when one is set. Every failure is a `RelayError` that says whether trying
again may help: a 5xx reply to the message is permanent; a 4xx, a refused login, a dropped
connection or a timeout is not (the outbox tries again later).
"""

from __future__ import annotations

import smtplib
import ssl
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Relay:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password: str = ""
    ca_file: Path | None = None
    timeout: float = 60.0
    helo: str = ""  # our name in EHLO; empty: this machine's


class RelayError(Exception):
    def __init__(self, text: str, permanent: bool):
        super().__init__(text)
        self.permanent = permanent


def send(relay: Relay, mail_from: str, rcpt_tos: list[str], raw: bytes) -> dict[str, str]:
    """Deliver `raw` to the relay; the recipients it refused (the others took it), address → reply."""
    client = _connect(relay)
    try:
        refused = client.sendmail(mail_from, rcpt_tos, raw)
    except smtplib.SMTPRecipientsRefused as exc:
        replies = exc.recipients.values()
        raise RelayError(
            "every recipient refused: " + "; ".join(_text(c, m) for c, m in replies),
            permanent=all(code >= 500 for code, _ in replies),
        ) from None
    except smtplib.SMTPResponseException as exc:  # MAIL FROM or DATA refused
        raise RelayError(_text(exc.smtp_code, exc.smtp_error), permanent=500 <= exc.smtp_code < 600) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise RelayError(f"the relay went away: {type(exc).__name__}: {exc}", permanent=False) from None
    finally:
        with suppress(smtplib.SMTPException, OSError):  # it took the message: a failed QUIT changes nothing
            client.quit()
        client.close()
    return {address: _text(code, message) for address, (code, message) in refused.items()}


def _connect(relay: Relay) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=str(relay.ca_file) if relay.ca_file else None)
    helo = relay.helo or None
    client: smtplib.SMTP
    try:
        if relay.security == "tls":
            client = smtplib.SMTP_SSL(
                relay.host, relay.port, local_hostname=helo, timeout=relay.timeout, context=context
            )
        else:
            client = smtplib.SMTP(relay.host, relay.port, local_hostname=helo, timeout=relay.timeout)
    except (smtplib.SMTPException, OSError) as exc:
        raise RelayError(f"cannot reach the relay: {type(exc).__name__}: {exc}", permanent=False) from None
    try:
        client.ehlo()
        if relay.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if relay.username:
            client.login(relay.username, relay.password)
    except smtplib.SMTPResponseException as exc:  # a refused login is a setting to fix: try again later
        client.close()
        raise RelayError(_text(exc.smtp_code, exc.smtp_error), permanent=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        client.close()
        raise RelayError(f"the relay went away: {type(exc).__name__}: {exc}", permanent=False) from None
    return client


def _text(code: int, message: bytes | str) -> str:
    message = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(message.split())}"[:300]
