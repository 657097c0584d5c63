"""Small ParsedMessage builders for the classifier tests (no parser, no corpus)."""

from __future__ import annotations

from models.mail.message import Address, ParsedMessage, Part


def message(
    text: str = "",
    *,
    subject: str = "",
    sender: str = "alice@example.com",
    name: str = "Alice",
    html: str = "",
    headers: list[tuple[str, str]] | None = None,
    attachments: list[Part] | None = None,
    **extra,
) -> ParsedMessage:
    return ParsedMessage(
        raw_sha256="0" * 64,
        message_id="id@example.com",
        subject=subject,
        from_=Address(name, sender),
        to=[Address("", "support@example.org")],
        headers=headers or [("from", f"{name} <{sender}>"), ("subject", subject)],
        text=text,
        html=html,
        attachments=attachments or [],
        **extra,
    )


def spam(i: int = 0) -> ParsedMessage:
    return message(
        f"buy cheap viagra now limited offer click here http://deals{i}.example.biz/win",
        subject="LIMITED OFFER!!!",
        sender=f"promo{i}@deals.example.biz",
        name="Deals",
        headers=[("list-unsubscribe", "<http://deals.example.biz/u>")],
    )


def ham(i: int = 0) -> ParsedMessage:
    return message(
        f"the build on branch {i} fails in the parser tests, can you look at the traceback",
        subject=f"Re: failing build {i}",
        sender="bob@dev.example.org",
        name="Bob",
    )
