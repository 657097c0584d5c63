"""Retention over mail that arrived by SMTP: the Trash, each rule with its dry run, legal holds, a run
stopped midway and finished by the next, the audit; time moved on by a fake clock, never by sleeping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import Harness
from models import (
    Attachment,
    AuditEvent,
    Blob,
    Contact,
    Message,
    RawMessage,
    RemovedAttachment,
    Ticket,
)
from models.base import utcnow
from serve import settings_env
from test_cli import assert_clean_failure, mail
from tickets.queues import Scope, counts
from tickets.ticket_status import set_status
from waiting import wait_for

ANN, BOB, SPAMMER = "ann@example.org", "bob@example.net", "offers@spam.example"
PDF = b"%PDF-1.4\n" + os.urandom(2000) + b"\n%%EOF\n"


@pytest.fixture
def desk(settings):
    harness = Harness(settings.model_copy(update={"spam_block": [SPAMMER]}))
    yield harness
    harness.close()


def deliver(desk, subject: str, sender: str = ANN, **kwargs) -> int:
    """The ticket the message went to."""
    raw, message_id = mail(subject, sender=sender, **kwargs)
    assert desk.send(raw, sender=sender)[0] == 250
    desk.drain()
    with desk.app.db.read() as session:
        return session.scalar(select(Message.ticket_id).where(Message.message_id_header == message_id))


def automatic(desk) -> int:
    raw, message_id = mail("Out of office", sender="robot@example.org")
    raw = b"Auto-Submitted: auto-replied\r\n" + raw
    assert desk.send(raw, sender="robot@example.org")[0] == 250
    desk.drain()
    with desk.app.db.read() as session:
        return session.scalar(select(Message.ticket_id).where(Message.message_id_header == message_id))


def postdesk(desk, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args],
        env=settings_env(desk.settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


def later(desk, days: float, **policy):
    """The retention rules as they will see the store `days` from now (a fake clock)."""
    app = desk.app
    if policy:
        app = type(app)(**{**vars(app), "settings": app.settings.model_copy(update=policy)})
    moment = utcnow() + timedelta(days=days)
    return app.retention(clock=lambda: moment)


def n(desk, model, *where) -> int:
    with desk.app.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def ticket(desk, ticket_id: int) -> Ticket | None:
    with desk.app.db.read() as session:
        return session.get(Ticket, ticket_id)


def queue_counts(desk) -> dict[str, int]:
    with desk.app.db.read() as session:
        found = counts(session, Scope(0, None))
    return {key: found[key] for key in ("open", "trash")}


def test_a_deleted_ticket_leaves_the_queues_comes_back_on_restore_and_goes_after_the_trash_days(desk):
    kept = deliver(desk, "Keep me")
    doomed = deliver(desk, "Printer", attachment=("scan.pdf", PDF))
    assert queue_counts(desk) == {"open": 2, "trash": 0}

    done = postdesk(desk, "tickets", "delete", str(doomed))
    assert done.returncode == 0 and "moved to the Trash from inbox" in done.stdout, done.stderr
    assert queue_counts(desk) == {"open": 1, "trash": 1}
    assert postdesk(desk, "tickets", "restore", str(doomed)).returncode == 0
    assert queue_counts(desk) == {"open": 2, "trash": 0} and ticket(desk, doomed).trashed_at is None
    assert postdesk(desk, "tickets", "delete", str(doomed)).returncode == 0

    assert later(desk, 29).dry_run(["trash"])["trash"].due == []
    assert later(desk, 31).dry_run(["trash"])["trash"].due == [doomed]
    report = later(desk, 31).run(["trash"], actor="tester")["trash"]
    assert report.done["tickets"] == 1 and report.done["messages"] == 1 and report.done["blobs"] == 1
    assert ticket(desk, doomed) is None and ticket(desk, kept) is not None
    assert n(desk, Blob) == 0 and not [f for f in desk.settings.blob_dir.rglob("*") if f.is_file()]


def test_purge_erases_a_ticket_at_once_and_bad_ticket_ids_are_one_line_errors(desk):
    doomed = deliver(desk, "Printer", attachment=("scan.pdf", PDF))
    done = postdesk(desk, "tickets", "purge", str(doomed))
    assert done.returncode == 0 and "1 messages, 1 attachments" in done.stdout, done.stderr
    assert ticket(desk, doomed) is None and n(desk, Message) == 0 and n(desk, Blob) == 0

    for verb in ("delete", "restore", "purge"):
        assert_clean_failure(postdesk(desk, "tickets", verb, "999"), "no ticket 999")
    kept = deliver(desk, "Hello")
    assert_clean_failure(postdesk(desk, "tickets", "restore", str(kept)), f"ticket {kept} is not in the Trash")
    assert postdesk(desk, "tickets", "delete", str(kept)).returncode == 0
    assert_clean_failure(postdesk(desk, "tickets", "delete", str(kept)), "in the Trash already")


def test_spam_and_automatic_mail_go_after_their_days_and_the_dry_run_lists_what_the_run_removes(desk):
    spam = [deliver(desk, f"Cheap {i}", sender=SPAMMER) for i in range(3)]
    bounce = automatic(desk)
    customer = deliver(desk, "Real question")
    assert {ticket(desk, t).queue for t in spam} == {"spam"} and ticket(desk, bounce).queue == "automatic"

    soon = later(desk, 29).dry_run(["spam", "automatic"])
    assert soon["spam"].due == [] and soon["automatic"].due == []
    due = later(desk, 31).dry_run(["spam", "automatic"])
    assert due["spam"].due == spam and due["automatic"].due == [bounce]

    dry = postdesk(desk, "retention", "run", "--dry-run", "--json", "spam")
    assert dry.returncode == 0 and json.loads(dry.stdout)["spam"]["due"] == []  # today: nothing is old yet

    reports = later(desk, 31).run(["spam", "automatic"], actor="tester")
    assert reports["spam"].done["tickets"] == 3 and reports["automatic"].done["tickets"] == 1
    assert [t for t in [*spam, bounce, customer] if ticket(desk, t)] == [customer]


def test_closed_tickets_are_anonymised_or_deleted_only_when_the_rule_is_on(desk):
    closed, still_open = deliver(desk, "Done"), deliver(desk, "Not done", sender=BOB)
    with desk.app.db.write() as session:
        set_status(session, closed, "closed")
    assert later(desk, 400).dry_run(["closed"])["closed"].off  # off by default

    anonymised = later(desk, 91, retention_closed_days=90, retention_closed_mode="anonymise").run(["closed"])
    assert anonymised["closed"].done["shells"] == 1
    shell = ticket(desk, closed)
    assert shell.erased_at is not None and shell.subject == "" and shell.status == "closed"
    assert n(desk, Message, Message.ticket_id == closed) == 0 and n(desk, Contact, Contact.address == ANN) == 0
    assert (
        later(desk, 91, retention_closed_days=90, retention_closed_mode="anonymise").dry_run(["closed"])["closed"].due
        == []
    )

    deleted = later(desk, 91, retention_closed_days=90).run(["closed"])
    assert deleted["closed"].done["tickets"] == 1 and ticket(desk, closed) is None
    assert ticket(desk, still_open) is not None


def test_old_attachments_go_while_their_messages_stay_and_the_agent_sees_a_placeholder(desk):
    with_file = deliver(desk, "Scan", attachment=("scan.pdf", PDF))
    assert later(desk, 400).dry_run(["attachments"])["attachments"].off  # off by default
    rules = later(desk, 8, retention_attachment_days=7)
    [attachment_id] = rules.dry_run(["attachments"])["attachments"].due
    assert rules.run(["attachments"])["attachments"].done == {"attachments": 1}

    assert n(desk, Attachment) == 0 and n(desk, Blob) == 0 and n(desk, Message) == 1
    assert n(desk, RemovedAttachment) == 1
    shown = postdesk(desk, "tickets", "show", str(with_file))
    assert f"attachment removed by retention on {utcnow() + timedelta(days=8):%Y-%m-%d}" in shown.stdout, shown.stdout
    assert "application/pdf" in shown.stdout and "Please help." in shown.stdout


def test_raw_mail_goes_after_its_days_and_the_message_stays(desk):
    deliver(desk, "Hello")
    assert later(desk, 400).dry_run(["raw_mail"])["raw_mail"].off
    report = later(desk, 15, retention_raw_mail_days=14).run(["raw_mail"])["raw_mail"]
    assert report.done == {"raw messages": 1}
    assert n(desk, RawMessage) == 0 and n(desk, Message) == 1


def test_contacts_no_ticket_or_message_points_at_go(desk):
    deliver(desk, "Hello")
    with desk.app.db.write() as session:
        session.add(Contact(address="left@example.org"))  # as a crash or an older version could leave one
    rules = later(desk, 0)
    assert len(rules.dry_run(["contacts"])["contacts"].due) == 1
    assert rules.run(["contacts"])["contacts"].done == {"contacts": 1}
    assert n(desk, Contact) == 1 and n(desk, Contact, Contact.address == ANN) == 1


def test_a_legal_hold_exempts_from_every_rule_and_refuses_erasure_naming_the_hold(desk):
    held_spam = deliver(desk, "Evidence", sender=SPAMMER)
    other_spam = deliver(desk, "Cheap", sender=SPAMMER)
    anns = deliver(desk, "Scan", attachment=("scan.pdf", PDF))

    added = postdesk(desk, "hold", "add", str(held_spam), "--reason", "case 2026-44", "--until", "2099-01-01")
    assert added.returncode == 0 and "legal hold 1 on ticket" in added.stdout, added.stderr
    added = postdesk(desk, "hold", "add", ANN.upper(), "--reason", "subpoena 7")
    assert added.returncode == 0, added.stderr
    listed = json.loads(postdesk(desk, "hold", "list", "--json").stdout)
    assert [(h["ticket"], h["address"], h["in_force"]) for h in listed] == [(held_spam, None, True), (None, ANN, True)]

    rules = later(desk, 400, retention_attachment_days=1, retention_raw_mail_days=1, retention_closed_days=1)
    dry = rules.dry_run()
    assert dry["spam"].due == [other_spam] and dry["attachments"].due == []
    assert dry["raw_mail"].due == [_first_message(desk, other_spam)]  # the held tickets' stay
    rules.run()
    assert ticket(desk, held_spam) and ticket(desk, anns) and ticket(desk, other_spam) is None
    assert n(desk, Attachment) == 1 and n(desk, RawMessage) == 2

    refused = postdesk(desk, "privacy", "erase", ANN, "--yes")
    assert_clean_failure(refused, "legal hold 2")
    assert "subpoena 7" in refused.stderr and "nothing was erased" in refused.stderr
    assert_clean_failure(postdesk(desk, "tickets", "purge", str(held_spam)), "legal hold 1")
    assert n(desk, Message, Message.ticket_id == anns) == 1

    assert postdesk(desk, "hold", "remove", "2").returncode == 0
    assert postdesk(desk, "privacy", "erase", ANN, "--yes").returncode == 0
    assert ticket(desk, anns) is None
    with desk.app.db.read() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("hold-%"))).all()
    assert [e.action for e in events] == ["hold-add", "hold-add", "hold-remove"]
    assert ANN not in json.dumps([[e.subject_hmac, e.details] for e in events])
    assert events[1].subject_hmac == desk.app.erasure_ledger().hmac(ANN)


def test_bad_hold_and_rule_input_is_a_one_line_error(desk):
    assert_clean_failure(postdesk(desk, "hold", "add", "77", "--reason", "x"), "no ticket 77")
    assert_clean_failure(postdesk(desk, "hold", "add", ANN, "--reason", "x", "--until", "31.12.2027"), "not a date")
    assert_clean_failure(postdesk(desk, "hold", "add", ANN, "--reason", "x", "--until", "2001-01-01"), "in the past")
    assert_clean_failure(postdesk(desk, "hold", "add", "nobody", "--reason", "x"), "give a ticket id or an address")
    assert_clean_failure(postdesk(desk, "hold", "remove", "5"), "no legal hold 5")
    assert_clean_failure(postdesk(desk, "retention", "run", "spam", "bogus"), "no rule 'bogus'")
    done = subprocess.run(
        [sys.executable, "-m", "postdesk", "retention", "run"],
        capture_output=True,
        text=True,
        env=settings_env(desk.settings, retention_at="25:00"),
        timeout=300,
    )
    assert done.returncode == 2 and "not a time of day" in done.stderr


def test_a_run_stopped_midway_leaves_whole_tickets_and_the_next_run_finishes_it(desk):
    spam = [deliver(desk, f"Cheap {i}", sender=SPAMMER, body="one") for i in range(3)]
    for t in spam:  # a second message in each ticket: the batch takes both or neither
        assert deliver(desk, "Re: Cheap", sender=SPAMMER, in_reply_to=_first_message(desk, t, "message_id_header")) == t
    rules = later(desk, 31)
    rules.batch = 1
    done = []  # stop once the first batch is committed
    first = rules.run(["spam"], actor="tester", progress=lambda rule, n, total: done.append(n), stop=lambda: any(done))[
        "spam"
    ]
    assert first.done["tickets"] == 1 and first.done["messages"] == 2
    assert [n(desk, Message, Message.ticket_id == t) for t in spam] == [0, 2, 2]

    second = later(desk, 31).run(["spam"], actor="tester")["spam"]
    assert second.done["tickets"] == 2 and all(ticket(desk, t) is None for t in spam)
    with desk.app.db.read() as session:
        runs = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "retention-run").order_by(AuditEvent.id)
        ).all()
    assert [r.details["outcome"] for r in runs] == ["stopped", "finished"]
    assert runs[1].details["rules"]["spam"]["tickets"] == 2 and runs[1].actor == "tester"
    assert SPAMMER not in json.dumps([r.details for r in runs])


def _first_message(desk, ticket_id: int, column: str = "id"):
    with desk.app.db.read() as session:
        return session.scalar(
            select(getattr(Message, column)).where(Message.ticket_id == ticket_id).order_by(Message.id).limit(1)
        )


def test_the_cli_run_prints_counts_per_rule(desk):
    deliver(desk, "Hello")
    done = postdesk(desk, "retention", "run", "contacts", "sweep")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "contacts: nothing",
        "sweep: blob files 0, temporary files 0, missing blob files 0",
    ]


def test_serve_runs_the_rules_at_their_time_of_day(settings, serve):
    from models.db import Database

    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.write() as session:
        session.add(Contact(address="left@example.org"))  # what only the contacts rule removes

    def runs() -> list[AuditEvent]:
        with db.read() as session:
            return session.scalars(select(AuditEvent).where(AuditEvent.action == "retention-run")).all()

    at = utcnow() + timedelta(seconds=20)  # serve has started and scheduled it well before then
    server = serve(retention_at=f"{at:%H:%M:%S}")
    try:
        [run] = wait_for(runs, 120, what="a retention run started by serve's scheduler")
        assert run.actor == "scheduler" and run.details["outcome"] == "finished"
        assert run.details["rules"]["contacts"]["contacts"] == 1
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == 0
        assert server.terminate() == 0
    finally:
        db.dispose()
