"""The proof: a person's mail reaches `postdesk serve` over SMTP with canaries in every field, is
learned by the spam filter and saved in model versions, one of their mails waits in spool/bad,
an agent's reply quoting them (with an attachment) and the auto-acknowledgements and agents'
notifications their tickets set off wait in the outbox;
after `postdesk privacy erase` no byte under the data folder, in the database or in the DEBUG logs
holds any canary in any form, and the spam model, live and in every version, equals count for
count one that never learned their mail."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import sys
import time
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from canary import Canaries
from classifier.features import Features
from classifier.model import CountModel
from classifier.versions import retrain, versions
from ingest.spool import Spool
from models import LegalHold, Message, OutboxMail, SpamLabel, TicketNote
from models.base import utcnow
from models.mail.envelope import Envelope
from models.mail.message import Part
from postdesk.accounts import users
from postdesk.app import App
from serve import settings_env
from tickets import notify
from tickets.replies import Draft, Outgoing, send_reply
from tickets.mailbox_rows import sync_mailboxes
from tickets.signing import MessageIdSigner
from tickets.spam_marks import mark_message
from tickets.work import add_note, merge
from waiting import wait_for

BOB = "bob@example.net"


def their_mail(c: Canaries, n: int, *, reply_to: str = "", full: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(c["name"], addr_spec=c["address"])
    msg["To"], msg["Message-ID"] = "support@example.com", f"<canary-{n}-{c['address'].split('@')[0]}@example.org>"
    msg["Subject"] = f"{c['subject']} {n}"
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content(f"Hello,\n{c['body']} number {n}.\nThanks\n")
    if full:
        msg.add_alternative(f"<html><body><p>{c['html']}</p></body></html>", subtype="html")
        msg.add_attachment(
            f"{c['attachment']}\r\n".encode("utf-16"), maintype="text", subtype="plain", filename=f"{c['filename']}.txt"
        )
    return msg


def bobs_mail(n: int, words: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = BOB, "support@example.com", f"Bob {n}"
    msg["Message-ID"] = f"<bob-{n}-{time.time_ns()}@example.net>"
    msg.set_content(words)
    return msg


def send(port: int, msg: EmailMessage, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(msg, from_addr=sender, to_addrs=["support@example.com"])


def stored(app: App, header: str, timeout: float = 60.0) -> Message:
    """The message once the server stored it."""

    def lookup() -> Message | None:
        with app.db.read() as session:
            return session.scalars(select(Message).where(Message.message_id_header == header.strip("<>"))).first()

    return wait_for(lookup, timeout, what=f"{header} to be stored")


def learn(app: App, message: Message, label: str) -> Features:
    with app.db.write() as session:
        mark_message(session, message.id, label, store=app.store, spam_filter=app.live_model().filter, actor="agent")
        return Features.from_bytes(
            session.scalar(select(SpamLabel.features).where(SpamLabel.key == f"message:{message.id}"))
        )


def save_version(app: App) -> None:
    with app.db.write() as session:
        retrain(session, app.settings.spam_dir, app.live_model().filter)


def model_of(*learned: tuple[Features, str]) -> CountModel:
    model = CountModel()
    for features, label in learned:
        model.learn(features, label)
    return model


def same_counts(a: CountModel, b: CountModel) -> bool:
    return bool(
        (a.spam_counts == b.spam_counts).all()
        and (a.ham_counts == b.ham_counts).all()
        and (a.n_spam, a.n_ham) == (b.n_spam, b.n_ham)
    )


def test_after_erasure_no_canary_is_left_anywhere_and_the_spam_model_never_learned_them(
    settings, serve, tmp_path, monkeypatch
):
    monkeypatch.setenv("POSTDESK_LOG_LEVEL", "DEBUG")
    c = Canaries.new()
    acknowledging = [m.model_dump() | {"acknowledgement": "We have it: ticket {ticket}."} for m in settings.mailboxes]
    server = serve(mailboxes=acknowledging)
    app = App.open(settings)
    try:
        with app.db.write() as session:  # an agent emailed of every new ticket in Support
            sync_mailboxes(session, settings.mailboxes)
            sam = users.create(session, "sam@example.com", name="Sam", role="agent", departments=["Support"])
            notify.choose(session, sam.agent_id, new_ticket=True, assigned=False)
        bob = [
            bobs_mail(n, words)
            for n, words in enumerate(
                ("printer broken invoice refund", "cheap pills casino winner prize", "delivery late thanks screen")
            )
        ]
        for msg in bob:
            send(server.port, msg, BOB)
        b = [stored(app, msg["Message-ID"]) for msg in bob]
        mentions = bobs_mail(9, f"Bitte {c['address']} zurückrufen, Grüße")  # base64: the body is not ASCII
        send(server.port, mentions, BOB)
        stored(app, mentions["Message-ID"])
        signed = MessageIdSigner(settings.secret_key.encode(), settings.smtp_hostname).make(b[0].ticket_id)
        theirs = [their_mail(c, 1, full=True), None, their_mail(c, 3, reply_to=f"<{signed}>"), their_mail(c, 4)]
        theirs[1] = their_mail(c, 2, reply_to=theirs[0]["Message-ID"])
        for msg in theirs:
            send(server.port, msg, c["address"])
        p = [stored(app, msg["Message-ID"]) for msg in theirs]
        assert p[1].ticket_id == p[0].ticket_id and p[2].ticket_id == b[0].ticket_id
        _work_on_their_tickets(app, c, p, b)
        _answer(app, p[0].ticket_id, c)
        with app.db.read() as session:
            kinds = sorted(
                session.scalars(
                    select(OutboxMail.kind).join(Message).where(Message.ticket_id.in_([p[0].ticket_id, p[3].ticket_id]))
                )
            )
        assert kinds == ["acknowledgement"] * 2 + ["notification"] * 2 + ["reply"], kinds

        b0, p0 = learn(app, b[0], "ham"), learn(app, p[0], "ham")
        save_version(app)  # version 1: Bob's first and their first
        b1, p3 = learn(app, b[1], "spam"), learn(app, p[3], "spam")
        save_version(app)  # version 2: and two more
        b2 = learn(app, b[2], "ham")  # after the last version: in the event log only
        running = app.live_model()  # a process that had learned it all
        with app.db.read() as session:
            running.refresh(session)
        assert same_counts(
            running.filter.model, model_of((b0, "ham"), (p0, "ham"), (b1, "spam"), (p3, "spam"), (b2, "ham"))
        )
        _leave_in_spool_bad(app.spool, their_mail(c, 5).as_bytes(), c["address"], tmp_path)
        with app.db.write() as session:  # a legal hold on them that has ended names them too
            session.add(
                LegalHold(address=c["address"], reason="case 12", actor="dpo", until=utcnow() - timedelta(days=1))
            )

        before = c.scan_tree(tmp_path) + ([] if app.db.is_sqlite else c.scan_database(app.db.engine))
        assert {f.canary for f in before} == set(c.values), "every canary was stored somewhere before"

        log = tmp_path / "erase.log"
        with open(log, "wb") as out:
            done = subprocess.run(
                [sys.executable, "-m", "postdesk", "privacy", "erase", c["address"], "--yes", "--json", "--redact"],
                env=settings_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        assert done.returncode == 0, log.read_text()

        assert c.scan_tree(tmp_path) == []
        if not app.db.is_sqlite:
            assert c.scan_database(app.db.engine) == []
        live = app.live_model()
        with app.db.read() as session:
            running.refresh(session)
            live.refresh(session)
            first, second = versions(session)
            assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 4
            assert session.scalars(select(TicketNote.body)).all() == ["Bob prefers the phone"]
            assert session.scalars(select(OutboxMail.kind).distinct()).all() == ["acknowledgement", "notification"]
        without_them = [
            model_of((b0, "ham")),
            model_of((b0, "ham"), (b1, "spam")),
            model_of((b0, "ham"), (b1, "spam"), (b2, "ham")),
        ]
        assert same_counts(CountModel.load(settings.spam_dir / first.path), without_them[0])
        assert same_counts(CountModel.load(settings.spam_dir / second.path), without_them[1])
        assert same_counts(live.filter.model, without_them[2])
        assert same_counts(running.filter.model, without_them[2])
    finally:
        assert server.terminate() == 0
        app.db.dispose()
    assert c.scan_tree(tmp_path) == [], "nor in the log the server wrote to its end"
    assert " DEBUG postdesk.runner: batch of" in (tmp_path / "serve.log").read_text()
    assert " DEBUG postdesk.erasure: " in (tmp_path / "erase.log").read_text()


def _work_on_their_tickets(app: App, c: Canaries, p: list[Message], b: list[Message]) -> None:
    """Agents' notes about them, on their ticket and on Bob's (naming their address), one on Bob's
    other ticket about Bob only; and their fourth ticket merged into their first."""
    with app.db.write() as session:
        now = utcnow()
        add_note(session, p[0].ticket_id, None, f"{c['name']} phoned: {c['body']}", actor="agent:1", now=now)
        add_note(
            session,
            b[0].ticket_id,
            None,
            f"{c['address']} wrote here too about {c['subject']}",
            actor="agent:1",
            now=now,
        )
        add_note(session, b[1].ticket_id, None, "Bob prefers the phone", actor="agent:1", now=now)
        merge(session, app.store, p[3].ticket_id, p[0].ticket_id, actor="agent:1", now=now)


def _answer(app: App, ticket_id: int, c: Canaries) -> None:
    """An agent's reply quoting them, with an attachment named and holding their canaries."""
    quote = f"You wrote: {c['body']}\n{c['html']}"
    files = [Part(f"{c['filename']}.txt", "text/plain", f"{c['attachment']}\r\n".encode("utf-16"))]
    with app.db.write() as session:
        send_reply(
            session,
            app.store,
            Draft(ticket_id, quote, files=files),
            Outgoing(app.signer(), frozenset({"support@example.com"}), "Sam"),
            utcnow(),
        )


def _leave_in_spool_bad(spool: Spool, raw: bytes, sender: str, tmp_path: Path) -> None:
    """One of their mails failed too often (as it was left in spool/bad), and a copy a runner could
    not read at all: written through a spool of their own, so the server's runner never takes them."""
    side = Spool(tmp_path / "side-spool")
    entry_id = side.put(
        raw.replace(b"\n", b"\r\n"),
        Envelope(mail_from=sender, rcpt_tos=["support@example.com"], attempts=3, errors=["RuntimeError: poison"]),
    )
    shutil.move(side.root / "new" / f"{entry_id}.entry", spool.root / "bad" / f"{entry_id}.entry")
    (spool.root / "bad" / "1-00000000.entry.unreadable").write_bytes(b"\x00\x01 damaged " + raw)
    shutil.rmtree(side.root)
