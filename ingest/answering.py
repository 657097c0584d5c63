"""The pipeline's last stage: what a new ticket sets off — the sender's auto-acknowledgement and
the notifications to the agents of its department (`tickets.notify` writes them, the outbox sends).

Only live mail (SMTP, IMAP) that opened a ticket in the inbox does: never imported archives,
automatic mail, bounces, list mail, mail from ourselves, spam, or unsure mail waiting for review.
The acknowledgement is capped per sender per 24 hours (`acknowledgement_daily_cap`), counting
those of the batch in hand too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.base import utcnow
from tickets import notify
from tickets.store import Opened

if TYPE_CHECKING:
    from ingest.pipeline import Context

LIVE = ("smtp", "imap")
_NEVER = {"automatic", "bounce", "loop", "from-ourselves", "no-mailbox-recipient"}


def _opened_in_inbox(ctx: Context) -> Opened | None:
    """The ticket this message opened, when it is one that should set anything off."""
    if (
        ctx.message_id is None
        or ctx.decision is None
        or ctx.decision.rule != "new"
        or ctx.queue != "inbox"
        or ctx.entry.envelope.source not in LIVE
        or _NEVER & set(ctx.flags)
    ):
        return None
    return ctx.batch.writes.opened.get(ctx.message_id)


def new_ticket_mail(ctx: Context) -> None:
    """The stage: acknowledge a new ticket, and tell the agents who asked."""
    opened = _opened_in_inbox(ctx)
    if opened is not None and ctx.message_id is not None:
        _acknowledge(ctx, opened.ticket_id)
        watchers = ctx.batch.watchers
        if opened.department_id not in watchers:  # read once a batch: most new tickets tell nobody
            watchers[opened.department_id] = notify.new_ticket_watchers(ctx.session, opened.department_id)
        settings = ctx.services.settings
        notify.notify_new_ticket(
            ctx.session,
            opened.ticket_id,
            ctx.message_id,
            watchers[opened.department_id],
            notify.Links(settings.web_url, settings.smtp_hostname),
            utcnow(),
        )


def _acknowledge(ctx: Context, ticket_id: int) -> None:
    mailbox = next((m for m in ctx.services.settings.mailboxes if m.address == ctx.mailbox), None)
    p, sender = ctx.parsed, ctx.sender
    if mailbox is None or not mailbox.acknowledgement or not sender or p.header("list-id"):
        return
    now = utcnow()
    sent = ctx.batch.acknowledged.get(sender, 0)
    cap = ctx.services.settings.acknowledgement_daily_cap
    if sent + notify.acknowledgements_today(ctx.session, sender, now) >= cap:
        return
    ack = notify.Acknowledgement(mailbox.acknowledgement_subject, mailbox.acknowledgement)
    notify.acknowledge(
        ctx.batch.writes,
        ctx.services.signer,
        ack,
        ticket_id=ticket_id,
        requester=(p.from_.name if p.from_ else "", sender),
        subject=p.subject,
        answering=p.message_id[:998],
        earlier=p.references,
        now=now,
    )
    ctx.batch.acknowledged[sender] = sent + 1
