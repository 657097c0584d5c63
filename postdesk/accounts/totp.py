"""Time-based one-time codes (RFC 6238, 30 s steps, 6 digits, as authenticator apps expect).

A code is taken for the step before, the current one and the next (clocks drift), and each
step only once: the last accepted step is stored, so a code seen over a shoulder or replayed
from a log is refused, and so is any older one.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

STEP = 30
ISSUER = "Postdesk"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG markup (drawn on the server, no script)."""
    return segno.make(uri, error="m").svg_inline(scale=5, title="Two-factor enrolment code")


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step `code` belongs to (near `now`, and later than the step `after`), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp, current = pyotp.TOTP(secret, interval=STEP), int(now.timestamp()) // STEP
    for step in (current - 1, current, current + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None
