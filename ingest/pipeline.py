"""What happens to one spooled message, as a list of small stages (Mailman's pipeline idea).

Each stage takes the `Context`, may add to it, and may end the pipeline (`ctx.done`).
All of them run inside the runner's transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Protocol
from collections.abc import Callable

from sqlalchemy.orm import Session

from classifier.features import Features
from classifier.judge import Judgement, SpamJudge
from ingest.answering import new_ticket_mail
from ingest.automatic_mail import automatic_flags, bounced_message_ids
from ingest.mailboxes import MailboxDirectory
from ingest.prepare import PrepareOptions, Prepared, prepare
from ingest.spool import Entry
from models import Message
from models.base import table
from models.db import stored_values
from models.mail.message import ParsedMessage
from models.mail.parse import ParseLimits
from models.mail.text_decoding import scrub
from models.settings import Settings
from tickets.signing import MessageIdSigner
from tickets.store import Addressee, ImapOrigin, MessageRecord, MessageStore, Writes
from tickets.threading import ThreadDecision, find_thread
from tickets.ticket_status import may_reopen


class ErasedMail(Protocol):
    """What erasures removed (the erasure ledger): mail with these bytes is never stored again."""

    def among(self, sha256s: Iterable[str]) -> set[str]:
        """Those of these raw sha256s an erasure removed."""


@dataclass
class Services:
    """What the stages need, built once per runner."""

    settings: Settings
    store: MessageStore
    signer: MessageIdSigner
    directory: MailboxDirectory
    mailbox_ids: dict[str, int]
    spam: SpamJudge | None = None
    erased: ErasedMail | None = None

    def prepare_options(self) -> PrepareOptions:
        s = self.settings
        limits = ParseLimits(
            max_header_bytes=s.max_header_bytes,
            max_parts=s.max_mime_parts,
            max_depth=s.max_mime_depth,
            max_addresses=s.max_header_addresses,
        )
        return PrepareOptions(
            limits, tuple(s.trusted_relays), s.spam_max_tokens, self.spam.n_features if self.spam else None
        )


@dataclass
class Batch:
    """What a batch does at once instead of once per message: it looks up the raw sha256s and
    Message-IDs already stored (the batch's own earlier messages are added as they pass), it reads
    who is told of new tickets once per department, and it writes through one `Writes` of the
    message store (which keeps what no later stage reads for its end)."""

    writes: Writes
    sha256s: set[str] = field(default_factory=set)
    message_ids: set[str] = field(default_factory=set)
    erased: set[str] = field(default_factory=set)  # raw sha256s of the batch an erasure removed before
    acknowledged: dict[str, int] = field(default_factory=dict)  # sender → auto-acknowledgements in this batch
    watchers: dict[int | None, list] = field(default_factory=dict)  # department → `notify.new_ticket_watchers`


@dataclass
class Context:
    session: Session
    entry: Entry  # raw: CRLF-normalised
    services: Services
    parsed: ParsedMessage
    batch: Batch
    features: Features | None = None
    flags: list[str] = field(default_factory=list)
    mailbox: str | None = None
    decision: ThreadDecision | None = None
    judgement: Judgement | None = None
    message_id: int | None = None  # once stored
    outcome: str = "stored"
    done: bool = False

    @classmethod
    def of(cls, session: Session, prepared: Prepared, services: Services, batch: Batch) -> Context:
        return cls(
            session,
            prepared.entry,
            services,
            prepared.parsed,
            batch,
            prepared.features,
            flags=list(prepared.parsed.flags),
        )

    @property
    def raw(self) -> bytes:
        return self.entry.raw

    @property
    def sha256(self) -> str:
        return self.parsed.raw_sha256

    @property
    def queue(self) -> str:
        """Where a new ticket waits: spam by verdict, automatic mail in its own queue, else by verdict."""
        verdict = self.judgement.queue if self.judgement else "inbox"
        return "automatic" if "automatic" in self.flags and verdict != "spam" else verdict

    @property
    def sender(self) -> str:
        return self.parsed.from_.address if self.parsed and self.parsed.from_ else ""

    @property
    def received_at(self) -> datetime:
        return datetime.fromtimestamp(self.entry.envelope.received_at, UTC)


def drop_erased(ctx: Context) -> None:
    """Mail an erasure removed, come again (an IMAP folder fetched anew after its UIDVALIDITY
    changed, an old mbox imported), is dropped: the erasure ledger keeps an HMAC of its sha256."""
    if ctx.sha256 in ctx.batch.erased:
        ctx.outcome, ctx.done = "erased", True


def dedupe(ctx: Context) -> None:
    """The same bytes (after CRLF normalisation) are stored once, whatever path brought them."""
    exists = ctx.sha256 in ctx.batch.sha256s
    ctx.batch.sha256s.add(ctx.sha256)  # kept (or the batch fails): later copies in it are duplicates
    if exists:
        ctx.outcome, ctx.done = "duplicate", True


def same_message_id(ctx: Context) -> None:
    """Another message with this Message-ID (other bytes) is kept and flagged, never dropped."""
    message_id = ctx.parsed.message_id[:998]
    exists = message_id in ctx.batch.message_ids
    ctx.batch.message_ids.add(message_id)
    if exists:
        ctx.flags.append("duplicate-message-id")


def route(ctx: Context) -> None:
    """Pick our mailbox: the first envelope recipient that is ours, else the first in To/Cc."""
    directory = ctx.services.directory
    candidates = list(ctx.entry.envelope.rcpt_tos) + [a.address for a in ctx.parsed.to + ctx.parsed.cc]
    ctx.mailbox = next((m for m in map(directory.resolve, candidates) if m), None)
    if ctx.mailbox is None:
        ctx.mailbox = directory.mailboxes[0].address
        ctx.flags.append("no-mailbox-recipient")


def detect_automatic(ctx: Context) -> None:
    ctx.flags.extend(automatic_flags(ctx.parsed, ctx.entry.envelope.mail_from, ctx.entry.envelope.source))
    if ctx.services.directory.is_ours(ctx.sender):
        ctx.flags.append("from-ourselves")


def classify(ctx: Context) -> None:
    if ctx.services.spam is not None:
        ctx.judgement = ctx.services.spam.judge(ctx.session, ctx.parsed, ctx.sender, ctx.features)


def thread(ctx: Context) -> None:
    if "loop" in ctx.flags or "from-ourselves" in ctx.flags:
        ctx.decision = ThreadDecision("none")
        return
    p = ctx.parsed
    references = p.references + p.in_reply_to + bounced_message_ids(p)
    ctx.decision = find_thread(
        ctx.session,
        sender=ctx.sender,
        subject=p.subject,
        references=references,
        list_id=p.header("list-id") or "",
        signer=ctx.services.signer,
    )
    ticket = ctx.decision.ticket
    if (
        ticket is not None
        and "automatic" not in ctx.flags
        and not may_reopen(ticket, ctx.received_at, ctx.services.settings.reopen_window_days)
    ):
        ctx.flags.append("closed-ticket-expired")
        ctx.decision = ThreadDecision("new", None, ticket.id)


def store(ctx: Context) -> None:
    """Every copy of the message, through the message store."""
    if _decided(ctx).ticket is not None and ctx.queue == "spam":
        ctx.flags.append("spam")  # threaded onto a known ticket: it stays there, flagged
    ctx.message_id = ctx.batch.writes.write(_record(ctx))


def _decided(ctx: Context) -> ThreadDecision:
    if ctx.decision is None:
        raise RuntimeError("the store stage ran before the thread stage")
    return ctx.decision


def _record(ctx: Context) -> MessageRecord:
    p, envelope, decision = ctx.parsed, ctx.entry.envelope, _decided(ctx)
    recipients = [Addressee("envelope", a.lower(), "") for a in envelope.rcpt_tos]
    for kind, addresses in (("to", p.to), ("cc", p.cc), ("reply-to", p.reply_to), ("from", p.authors)):
        recipients += [Addressee(kind, a.address, a.name) for a in addresses]
    return MessageRecord(
        raw=ctx.raw,
        sha256=ctx.sha256,
        spool_id=ctx.entry.id,
        source=envelope.source,
        received_at=ctx.received_at,
        envelope_from=scrub(envelope.mail_from),
        recipients=recipients,
        message_id=p.message_id,
        date=p.date,
        in_reply_to=p.in_reply_to,
        references=p.references,
        list_id=p.header("list-id") or "",
        subject=p.subject,
        from_address=ctx.sender,
        from_name=p.from_.name if p.from_ else "",
        text_body=p.text,
        html_body=p.html,
        upstream=p.upstream,
        attachments=p.attachments,
        mailbox_id=ctx.services.mailbox_ids.get(ctx.mailbox or ""),
        flags=ctx.flags,
        thread_rule=decision.rule,
        ticket_id=decision.ticket.id if decision.ticket else None,
        linked_to=decision.linked_to,
        wakes_ticket="automatic" not in ctx.flags,
        queue=ctx.queue,
        judgement=ctx.judgement,
        imap=ImapOrigin(**envelope.imap) if envelope.imap else None,
    )


STAGES: tuple[Callable[[Context], None], ...] = (
    drop_erased,
    dedupe,
    same_message_id,
    route,
    detect_automatic,
    classify,
    thread,
    store,
    new_ticket_mail,
)


def process(session: Session, entry: Entry, services: Services) -> Context:
    """Prepare one spool entry inline and run it through every stage (the runner decides what a failure means)."""
    return process_batch(session, [prepare(entry, services.prepare_options())], services)[0]


_MESSAGES = table(Message)


def process_batch(session: Session, prepared: list[Prepared], services: Services) -> list[Context]:
    """Run a prepared batch through every stage, in order; raises on the first failure.

    The batch looks up its raw sha256s and Message-IDs in one query each, not two per message
    (bench/results/runner.md); then the messages go through the stages one after
    the other, each seeing what the earlier ones stored.
    """
    with services.store.batch(session) as writes:
        batch = Batch(writes)
        contexts = [Context.of(session, p, services, batch) for p in prepared]
        sha256s = {ctx.sha256 for ctx in contexts}
        batch.erased = services.erased.among(sha256s) if services.erased is not None else set()
        batch.sha256s = stored_values(session, _MESSAGES.c.raw_sha256, sha256s)
        batch.message_ids = stored_values(
            session, _MESSAGES.c.message_id_header, {ctx.parsed.message_id[:998] for ctx in contexts}
        )
        for ctx in contexts:
            _run(ctx, STAGES)
    return contexts


def _run(ctx: Context, stages) -> None:
    for stage in stages:
        if ctx.done:
            return
        stage(ctx)
