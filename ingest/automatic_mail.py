"""Recognising mail no human wrote: auto-replies, bounces, bulk and list mail, and our own loops.

Such mail is stored and flagged "automatic" (plus the reason), and never reopens a ticket.
"""

from __future__ import annotations

import email.parser
import email.policy
import re

from models.mail.message import ParsedMessage

LOOP_HEADER = "x-postdesk-loop"
_REPORT_TYPES = {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"}
_ANGLE = re.compile(r"<([^<>\s]{1,990})>")


def _auto_reasons(msg: ParsedMessage, mail_from: str, source: str) -> list[str]:
    reasons = []
    auto_submitted = (msg.header("auto-submitted") or "no").strip().lower()
    if not auto_submitted.startswith("no"):
        reasons.append("auto-submitted")
    if (msg.header("precedence") or "").strip().lower() in ("bulk", "junk", "list"):
        reasons.append("precedence")
    if msg.header("x-autoreply") is not None or msg.header("x-autorespond") is not None:
        reasons.append("x-autoreply")
    if msg.header("x-auto-response-suppress") is not None:
        reasons.append("x-auto-response-suppress")
    if source == "smtp" and mail_from in ("", "<>"):
        reasons.append("null-sender")
    return reasons


def is_bounce(msg: ParsedMessage) -> bool:
    content_type = (msg.header("content-type") or "").lower()
    return "multipart/report" in content_type and "delivery-status" in content_type


def automatic_flags(msg: ParsedMessage, mail_from: str, source: str) -> list[str]:
    flags = [f"auto:{r}" for r in _auto_reasons(msg, mail_from, source)]
    if is_bounce(msg):
        flags.append("bounce")
    if flags:
        flags.append("automatic")
    if msg.header(LOOP_HEADER) is not None:
        flags.append("loop")
    return flags


def bounced_message_ids(msg: ParsedMessage) -> list[str]:
    """Message-IDs of the original mail inside a bounce report, for threading it."""
    if not is_bounce(msg):
        return []
    ids = []
    for part in msg.attachments:
        if part.content_type in _REPORT_TYPES:
            headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(part.payload[:65536])
            ids += _ANGLE.findall(str(headers.get("message-id", "")))
    return ids
