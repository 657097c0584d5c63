"""Erasing a person: a preview of exactly what will go, then one resumable job of small committed batches.

What goes (`Preview` lists it):
- the tickets they requested (their contact's, or opened by their mail), with every message in
  them — or, anonymising, kept as shells: status, queue, department and dates, no content;
- in anyone else's ticket, only the messages they sent; the others stay;
- with each message every copy the message store made (`MessageStore.erase`): raw mail,
  recipients, attachments and the blob files whose last reference goes, verdicts, what the spam
  filter learned from it (live model and every saved version);
- the rows that name them in mail others sent, their sender rule and their contact
  (`MessageStore.unname`); the copies left on IMAP servers; spool entries holding their mail;
- with `redact`, their address where the text of mail that stays mentions it (`MessageStore.redact`).

The job, in order; each step is idempotent, so a job killed anywhere and run again finishes
(its `ErasureJob` row is found by the keyed hash of the address, or by the contact id):
1. server copies of their mail removed (before the rows that say where they lie go);
2. spam: everything learned from the mail that goes, forgotten in one transaction;
3. batches, one transaction each: one ticket's messages (a reader never sees half a ticket), or
   up to `BATCH` loose ones; each batch's ids and raw hashes go to the erasure ledger (fsynced)
   before it commits; steps 1-3 repeat until nothing of theirs is left (mail arriving meanwhile);
4. the rows naming them, their sender rule and contact (recorded in the ledger first); with
   `redact`, the mentions of their address in mail that stays, a batch per transaction;
5. spool leftovers (recorded in the ledger first); stray spam snapshot files;
6. freed database pages (`retention.free_pages`);
(A legal hold on the address, or on a ticket the erasure would touch, refuses the erasure before
anything is done: `preview` and `erase` raise an `ErasureError` naming the hold.)
7. the receipt: an id, the time, the counts and the HMAC of the address, in an audit record too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from classifier.forgetting import sweep_snapshots
from ingest.spool import Entry, Spool
from models import (
    Attachment,
    Blob,
    Contact,
    ErasureJob,
    ImapCopy,
    Message,
    Recipient,
    SenderRule,
    SpamLabel,
    Ticket,
)
from models.base import utcnow
from models.db import Database
from models.mail.parse import raw_sha256
from models.settings import ImapAccount
from retention.audit import record
from retention.free_pages import free_pages
from retention.holds import blocking, describe, forget_ended
from retention.ledger import ErasureLedger, normalise_address
from retention.server_copies import ServerCopy, remove_server_copies
from tickets.store import MessageStore
from tickets.store.labels import spam_keys

log = logging.getLogger("postdesk.erasure")

Mode = Literal["delete", "anonymise"]
MODES = ("delete", "anonymise")
BATCH = 100  # loose messages (on no ticket) erased per transaction
_CHUNK = 500
_ROUNDS = 5  # passes over what is left, for mail of theirs that arrives while the job runs

Progress = Callable[[str, int, int], None]  # what, done, total


class ErasureError(Exception):
    """The erasure cannot go on; the message is for people (and holds no address)."""


@dataclass(frozen=True)
class Person:
    address: str  # normalised
    subject: str  # HMAC of the address under the ledger's key
    contact_id: int | None


@dataclass
class Preview:
    """Exactly what an erasure of `person` will remove, as it stands now."""

    person: Person
    requested: list[int] = field(default_factory=list)  # tickets they requested: all their messages go
    elsewhere: list[int] = field(default_factory=list)  # others' tickets: only the messages they sent go
    messages: list[int] = field(default_factory=list)  # every message that goes
    sent: int = 0  # of those, sent by them
    loose: list[int] = field(default_factory=list)  # theirs, on no ticket
    named_in: list[int] = field(default_factory=list)  # mail others sent naming them: stays
    attachments: int = 0
    blob_files: int = 0  # attachment files whose last reference goes
    shared_blob_files: int = 0  # files also used by mail that stays: kept
    spam_labels: int = 0
    server_copies: int = 0
    named_in_kept_mail: int = 0  # recipient rows of mail others sent that name them: the rows go, the mail stays
    mentioned_in: list[int] = field(default_factory=list)  # mail others sent whose text names them: `redact`
    participant_rows: int = 0
    sender_rule: bool = False
    contact: bool = False
    spool_entries: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "tickets_requested": len(self.requested),
            "tickets_of_others": len(self.elsewhere),
            "messages": len(self.messages),
            "messages_sent": self.sent,
            "attachments": self.attachments,
            "blob_files": self.blob_files,
            "shared_blob_files_kept": self.shared_blob_files,
            "spam_labels": self.spam_labels,
            "imap_server_copies": self.server_copies,
            "recipient_rows_in_kept_mail": self.named_in_kept_mail,
            "participant_rows": self.participant_rows,
            "sender_rule": int(self.sender_rule),
            "contact": int(self.contact),
            "spool_entries": self.spool_entries,
            "kept_messages_mentioning_them": len(self.mentioned_in),
        }


@dataclass
class Receipt:
    """What an erasure hands the person or the regulator: no personal data, only the keyed hash."""

    id: str
    finished_at: datetime
    mode: str
    subject_hmac: str
    counts: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "receipt": self.id,
            "finished_at": self.finished_at.isoformat(),
            "mode": self.mode,
            "address_hmac_sha256": self.subject_hmac,
            "counts": self.counts,
        }


def _nothing(_what: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class _Job:
    id: int
    receipt: str


@dataclass
class Eraser:
    db: Database
    store: MessageStore
    spool: Spool
    ledger: ErasureLedger
    imap_accounts: list[ImapAccount] = field(default_factory=list)

    # --- who -------------------------------------------------------------------------------------

    def person(self, target: str) -> Person:
        """The person an address or a contact id names."""
        with self.db.read() as session:
            if target.strip().isdigit():
                contact_id = int(target)
                address = session.scalar(select(Contact.address).where(Contact.id == contact_id))
                if address is None:
                    started = session.scalar(
                        select(func.count())
                        .select_from(ErasureJob)
                        .where(ErasureJob.contact_id == contact_id, ErasureJob.finished_at.is_(None))
                    )
                    hint = "; its erasure was interrupted: run it again with the address" if started else ""
                    raise ErasureError(f"no contact {contact_id}{hint}")
                return Person(address, self.ledger.hmac(address), contact_id)
            address = normalise_address(target)
            if "@" not in address or len(address) > 320:
                raise ErasureError("give an address (name@example.org) or a contact id")
            known = session.scalar(select(Contact.id).where(Contact.address == address))
            return Person(address, self.ledger.hmac(address), known)

    # --- what ------------------------------------------------------------------------------------

    def preview(self, person: Person) -> Preview:
        """What goes; an `ErasureError` naming the hold when a legal hold covers any of it."""
        with self.db.read() as session:
            preview = plan(session, self.store, person)
            _refuse_if_held(session, person, preview)
        preview.spool_entries = sum(1 for entry in self.spool.everything() if self._in_spool(person)(entry))
        return preview

    # --- the job ---------------------------------------------------------------------------------

    def erase(
        self, person: Person, mode: Mode, actor: str, progress: Progress = _nothing, redact: bool = False
    ) -> Receipt:
        """Erase them; with `redact`, their address is also replaced where mail that stays mentions it."""
        if mode not in MODES:
            raise ErasureError(f"mode must be delete or anonymise, not {mode!r}")
        with self.db.read() as session:
            _refuse_if_held(session, person, plan(session, self.store, person, counted=False))
        job = self._job(person, mode, actor)
        for _ in range(_ROUNDS):
            with self.db.read() as session:
                todo = plan(session, self.store, person, counted=False)
            if not todo.messages:
                break
            self._server_copies(job, todo.messages, progress)
            self._forget_learned(job, todo.messages)
            self._batches(job, person, mode, todo, progress)
        else:
            with self.db.read() as session:
                if plan(session, self.store, person, counted=False).messages:
                    raise ErasureError(f"mail of theirs kept arriving through {_ROUNDS} passes; run the erasure again")
        self._unname(job, person)
        if redact:
            self._redact(job, person, progress)
        self._spool(job, person, progress)
        self._finish_files(job)
        return self._finish(job, person, mode)

    def _job(self, person: Person, mode: Mode, actor: str) -> _Job:
        """The unfinished job for this person, or a new one."""
        with self.db.write() as session:
            wanted = [ErasureJob.subject_hmac == person.subject]
            if person.contact_id is not None:
                wanted.append(ErasureJob.contact_id == person.contact_id)
            job = session.scalars(
                select(ErasureJob)
                .where(or_(*wanted), ErasureJob.finished_at.is_(None))
                .order_by(ErasureJob.id)
                .limit(1)
            ).first()
            if job is not None:
                if job.mode != mode:
                    raise ErasureError(
                        f"an interrupted {job.mode} erasure of this person is unfinished: "
                        f"run it again with --mode {job.mode}"
                    )
                return _Job(job.id, job.receipt)
            job = ErasureJob(
                receipt=str(uuid.uuid4()),
                subject_hmac=person.subject,
                contact_id=person.contact_id,
                mode=mode,
                actor=actor[:200],
                started_at=utcnow(),
                counts={},
            )
            session.add(job)
            session.flush()
            return _Job(job.id, job.receipt)

    def _count(self, session: Session, job: _Job, counts: dict[str, int]) -> None:
        """Add to the job's counts, in the transaction whose work they count."""
        row = session.get_one(ErasureJob, job.id)
        total = dict(row.counts)
        for name, value in counts.items():
            total[name] = total.get(name, 0) + int(value)
        row.counts = total

    def _server_copies(self, job: _Job, message_ids: list[int], progress: Progress) -> None:
        with self.db.read() as session:
            copies = _server_copies_of(session, message_ids)
        if not copies:
            return
        progress("IMAP server copies", 0, len(copies))
        removed = remove_server_copies(copies, self.imap_accounts)
        with self.db.write() as session:
            self._count(
                session,
                job,
                {
                    "imap_expunged": removed.expunged,
                    "imap_already_gone": removed.already_gone,
                    "imap_unreachable": removed.unreachable,
                },
            )
        progress("IMAP server copies", len(copies), len(copies))

    def _forget_learned(self, job: _Job, message_ids: list[int]) -> None:
        with self.db.read() as session:
            learned = _learned(session, message_ids)
        if learned:
            with self.db.write() as session:
                forgotten = self.store.forget_learned(session, learned)
                self._count(
                    session,
                    job,
                    {
                        "spam_labels": forgotten.labels,
                        "spam_events": forgotten.events,
                        "spam_versions": forgotten.versions,
                    },
                )

    def _batches(self, job: _Job, person: Person, mode: Mode, todo: Preview, progress: Progress) -> None:
        batches = (
            [("requested", t) for t in todo.requested]
            + [("elsewhere", t) for t in todo.elsewhere]
            + [("loose", todo.loose[i : i + BATCH]) for i in range(0, len(todo.loose), BATCH)]
        )
        for done, (kind, which) in enumerate(batches):
            progress("messages", done, len(batches))
            with self.db.write() as session:
                ids = _batch_ids(session, person, kind, which)
                if not ids:
                    continue
                hashes = session.scalars(select(Message.raw_sha256).where(Message.id.in_(ids))).all()
                blobs = session.scalars(select(Attachment.blob_id).where(Attachment.message_id.in_(ids))).all()
                self.ledger.append(
                    {
                        "kind": "messages",
                        "job": job.receipt,
                        "mode": mode,
                        "messages": ids,
                        "raw": sorted(self.ledger.hmac(h) for h in hashes if h),
                        "blobs": sorted(set(blobs)),
                    }
                )
                erased = self.store.erase(session, ids, shells=mode == "anonymise")
                self._count(session, job, {name: value for name, value in vars(erased).items()})
            log.debug(
                "erasure %s: %d messages (%s %s) erased",
                job.receipt,
                len(ids),
                kind,
                which if kind != "loose" else "batch",
            )
        progress("messages", len(batches), len(batches))

    def _unname(self, job: _Job, person: Person) -> None:
        with self.db.write() as session:
            forget_ended(session, person.address, utcnow())  # holds on them that ended name them too
            rows = self.store.naming(session, person.address)
            if not rows:
                return
            self.ledger.append(
                {
                    "kind": "person",
                    "job": job.receipt,
                    "subject": person.subject,
                    "recipients": rows.recipients,
                    "contacts": rows.contacts,
                    "participant_tickets": sorted({t for t, _ in rows.participants}),
                }
            )
            unnamed = self.store.unname(session, rows)
            self._count(session, job, {f"{name}_unnamed": value for name, value in unnamed.items()})

    def _redact(self, job: _Job, person: Person, progress: Progress) -> None:
        """Their address, where mail that stays mentions it, replaced: a batch per transaction."""
        with self.db.read() as session:
            mentioned = self.store.mentions(session, person.address)
        for done in range(0, len(mentioned), BATCH):
            progress("mentions", done, len(mentioned))
            with self.db.write() as session:
                redacted = self.store.redact(session, mentioned[done : done + BATCH], person.address)
                self._count(session, job, {"mentions_redacted": redacted})
        progress("mentions", len(mentioned), len(mentioned))

    def _spool(self, job: _Job, person: Person, progress: Progress) -> None:
        def record_first(entries: list[Entry]) -> None:
            self.ledger.append(
                {
                    "kind": "spool",
                    "job": job.receipt,
                    "raw": sorted(self.ledger.hmac(raw_sha256(e.raw)) for e in entries),
                }
            )

        progress("spool", 0, 1)
        removed = self.spool.purge(self._in_spool(person), record_first)
        if removed:
            with self.db.write() as session:
                self._count(session, job, {"spool_entries": removed})
        progress("spool", 1, 1)

    def _in_spool(self, person: Person) -> Callable[[Entry], bool]:
        """Whether a spool entry holds their mail: it names their address (as a whole address, in
        its bytes or envelope), or it is mail an erasure already removed (by its raw sha256)."""
        named = re.compile(rb"(?<![\w.+-])" + re.escape(person.address.encode()) + rb"(?![\w-]|\.\w)", re.IGNORECASE)

        def holds(entry: Entry) -> bool:
            envelope = [entry.envelope.mail_from, *entry.envelope.rcpt_tos]
            return (
                any(normalise_address(a) == person.address for a in envelope)
                or bool(named.search(entry.raw))
                or bool(self.ledger.among([raw_sha256(entry.raw)]))
            )

        return holds

    def _finish_files(self, job: _Job) -> None:
        """Files a crash between a commit and its unlinks left: spam snapshots no version names, and
        blobs this job's batches released (the ledger names them)."""
        released = [i for e in self.ledger.entries() if e.get("job") == job.receipt for i in e.get("blobs", ())]
        with self.db.write() as session:
            stray = sweep_snapshots(session, self.store.spam_dir) if self.store.spam_dir else 0
            stray += self.store.release_unused(session, released)
            if stray:
                self._count(session, job, {"stray_files": stray})

    def _finish(self, job: _Job, person: Person, mode: Mode) -> Receipt:
        """Freed pages first; then the job's end and the audit record, which hold no personal data."""
        pages = free_pages(self.db)
        with self.db.write() as session:
            self._count(session, job, pages)
            row = session.get_one(ErasureJob, job.id)
            row.finished_at = utcnow()
            receipt = Receipt(row.receipt, row.finished_at, mode, person.subject, dict(row.counts))
            record(
                session,
                row.actor,
                "privacy-erase",
                person.subject,
                {"receipt": row.receipt, "mode": mode, "counts": receipt.counts},
            )
        log.info("erasure %s finished: %d messages", receipt.id, receipt.counts.get("messages", 0))
        return receipt


def _refuse_if_held(session: Session, person: Person, todo: Preview) -> None:
    if holds := blocking(session, person.address, todo.requested + todo.elsewhere, utcnow()):
        raise ErasureError(
            f"{describe(holds[0], named=False)} covers what this erasure would remove: nothing was "
            f"erased (`postdesk hold list`; `postdesk hold remove {holds[0].id}` ends it)"
        )


# --- the plan: indexed lookups only ---------------------------------------------------------------


def _sent_by(person: Person):
    """Messages they sent: by their address in From or the envelope, or their contact."""
    clauses = [Message.from_address == person.address, Message.envelope_from == person.address]
    if person.contact_id is not None:
        clauses.append(Message.contact_id == person.contact_id)
    return or_(*clauses)


def plan(session: Session, store: MessageStore, person: Person, counted: bool = True) -> Preview:
    """What an erasure of `person` removes now, by indexed lookups only; `counted=False` gives only
    the tickets and messages (what the job and the export need), without the preview's counts."""
    plan = Preview(person)
    copies = store.copies_of(session, person.address, rows=False)
    plan.named_in = copies.named_in
    sent = set(copies.sent)
    if person.contact_id is not None and copies.contact_id != person.contact_id:  # their contact row went already
        sent |= set(session.scalars(select(Message.id).where(Message.contact_id == person.contact_id)))
    tickets = set(copies.tickets)
    requested = {t for t in tickets if _requested_by(session, t, person, sent)}
    plan.requested = sorted(requested)
    going = set()
    for ticket_id in plan.requested:
        going |= set(session.scalars(select(Message.id).where(Message.ticket_id == ticket_id)))
    rows = in_chunks(session, select(Message.id, Message.ticket_id), Message.id, sorted(sent))
    plan.elsewhere = sorted({t for _, t in rows if t is not None and t not in requested})
    plan.loose = sorted(i for i, t in rows if t is None)
    going |= sent
    plan.messages, plan.sent = sorted(going), len(sent)
    if counted:
        _count_rows(session, store, person, plan)
    return plan


def _count_rows(session: Session, store: MessageStore, person: Person, plan: Preview) -> None:
    _count_files(session, plan)
    plan.spam_labels = _count_in(
        session,
        SpamLabel.key,
        spam_keys(in_chunks(session, select(Message.id, Message.raw_sha256), Message.id, plan.messages)),
    )
    plan.server_copies = _count_in(session, ImapCopy.message_id, plan.messages)
    named = store.naming(session, person.address)
    plan.named_in_kept_mail = len(
        set(named.recipients)
        - set(in_chunks(session, select(Recipient.id), Recipient.message_id, plan.messages, scalars=True))
    )
    plan.participant_rows = len(named.participants)
    plan.sender_rule = bool(session.scalar(select(SenderRule.pattern).where(SenderRule.pattern == person.address)))
    plan.contact = bool(named.contacts)
    going = set(plan.messages)
    plan.mentioned_in = [i for i in store.mentions(session, person.address) if i not in going]


def _requested_by(session: Session, ticket_id: int, person: Person, sent: set[int]) -> bool:
    """Their contact's ticket, or one their mail opened (spam makes no contact)."""
    contact_id = session.scalar(select(Ticket.contact_id).where(Ticket.id == ticket_id))
    if person.contact_id is not None and contact_id == person.contact_id:
        return True
    first = session.scalar(select(func.min(Message.id)).where(Message.ticket_id == ticket_id))
    return first in sent


def _count_files(session: Session, plan: Preview) -> None:
    """Attachments that go, and of their blob files those whose last reference goes with them."""
    uses: dict[int, int] = {}
    for (blob_id,) in in_chunks(session, select(Attachment.blob_id), Attachment.message_id, plan.messages):
        uses[blob_id] = uses.get(blob_id, 0) + 1
    plan.attachments = sum(uses.values())
    counts = dict(in_chunks(session, select(Blob.id, Blob.refcount), Blob.id, sorted(uses)))
    plan.blob_files = sum(1 for blob_id, n in uses.items() if counts.get(blob_id, 0) <= n)
    plan.shared_blob_files = len(uses) - plan.blob_files


def _batch_ids(session: Session, person: Person, kind: str, which) -> list[int]:
    """The ids one batch erases, read in its own transaction (mail may have arrived since the plan)."""
    if kind == "requested":
        return sorted(session.scalars(select(Message.id).where(Message.ticket_id == which)))
    if kind == "elsewhere":
        return sorted(session.scalars(select(Message.id).where(Message.ticket_id == which, _sent_by(person))))
    return sorted(session.scalars(select(Message.id).where(Message.id.in_(which))))


def _server_copies_of(session: Session, message_ids: list[int]) -> list[ServerCopy]:
    rows = in_chunks(
        session,
        select(
            ImapCopy.message_id,
            ImapCopy.account,
            ImapCopy.folder,
            ImapCopy.uidvalidity,
            ImapCopy.uid,
            Message.message_id_header,
            Message.raw_sha256,
        ).join(Message, Message.id == ImapCopy.message_id),
        ImapCopy.message_id,
        message_ids,
    )
    return [ServerCopy(*row) for row in rows]


def _learned(session: Session, message_ids: list[int]) -> list[int]:
    """Those of these messages the spam filter learned (as stored mail or as the same bytes)."""
    rows = in_chunks(session, select(Message.id, Message.raw_sha256), Message.id, message_ids)
    by_key = {key: i for i, sha256 in rows for key in spam_keys([(i, sha256)])}
    found = in_chunks(session, select(SpamLabel.key), SpamLabel.key, sorted(by_key), scalars=True)
    return sorted({by_key[key] for key in found})


def _count_in(session: Session, column, values: list) -> int:
    return sum(
        session.scalar(select(func.count()).where(column.in_(values[i : i + _CHUNK])))
        for i in range(0, len(values), _CHUNK)
    )


def in_chunks(session: Session, statement, column, values: list, scalars: bool = False) -> list:
    """`statement` for `values` of `column`, in chunks well under SQLite's bound-parameter limit."""
    found: list = []
    for i in range(0, len(values), _CHUNK):
        chunk = statement.where(column.in_(values[i : i + _CHUNK]))
        found += session.scalars(chunk).all() if scalars else session.execute(chunk).all()
    return found
