"""The `postdesk` command as a user runs it: a child process, its output, its exit code.

Mail arrives through the in-process harness (real SMTP, real runner); the commands read the
same data folder and database from another process, as an operator's shell would.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest import pipeline
from ingest.spool import Spool
from models import Message
from models.mail.envelope import Envelope
from models.settings import Settings
from postdesk.app import App
from serve import settings_env
from waiting import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tickets"))
from test_spam_flow import raw as spam_mail, teach  # noqa: E402  (the same synthetic ham and spam)

_counter = iter(range(10**6))


def cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args],
        env=env or settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_json(settings: Settings, *args: str):
    done = cli(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_clean_failure(done: subprocess.CompletedProcess, says: str) -> None:
    """Non-zero exit, one readable line naming the problem, no traceback."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error:") and says in line, done.stderr


def mail(
    subject: str,
    sender: str = "alice@example.org",
    in_reply_to: str | None = None,
    attachment: tuple[str, bytes] | None = None,
    body: str = "Please help.",
) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg_id = f"cli{next(_counter)}.{time.time_ns()}@example.org"
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "support@example.com", subject, f"<{msg_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = f"<{in_reply_to}>"
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes().replace(b"\n", b"\r\n"), msg_id


def deliver(postdesk, raw: bytes, sender: str = "alice@example.org") -> None:
    code, _ = postdesk.send(raw, sender=sender)
    assert code == 250
    postdesk.drain()


@pytest.fixture
def data_folder(settings) -> None:
    """A data folder with its database, as `postdesk serve` leaves it."""
    App.open(settings).db.dispose()


# --- status ------------------------------------------------------------------------------------


def test_status_reports_spool_database_and_disk(settings, data_folder):
    Spool(settings.spool_dir).put(b"Subject: waiting\r\n\r\nx\r\n", Envelope())
    report = cli_json(settings, "status")
    assert report["spool"] == {"waiting": 1, "in_progress": 0, "bad": 0}
    assert report["database"]["reachable"] is True
    assert report["disk"]["free_bytes"] > 0 and report["disk"]["low"] is False
    assert report["data_dir"] == str(settings.data_dir.resolve())

    done = cli(settings, "status")
    assert done.returncode == 0, done.stderr
    assert "waiting=1" in done.stdout and "bad=0" in done.stdout and "reachable=True" in done.stdout


def test_status_reports_a_database_that_is_down_instead_of_failing(settings):
    settings.data_dir.mkdir(parents=True)
    env = settings_env(settings)
    env["POSTDESK_DATABASE_URL"] = "postgresql+psycopg://postdesk@127.0.0.1:1/nowhere"
    done = cli(settings, "status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["database"]["reachable"] is False and report["spool"]["waiting"] == 0


# --- tickets -----------------------------------------------------------------------------------


def test_tickets_list_and_show_what_arrived_over_smtp(postdesk, settings):
    first, first_id = mail("Printer on fire", attachment=("report.pdf", b"%PDF-1.4 fake\n"))
    deliver(postdesk, first)
    reply, _ = mail("Re: Printer on fire", in_reply_to=first_id, body="Still burning.")
    deliver(postdesk, reply)
    other, _ = mail("Invoice question", sender="bob@example.net")
    deliver(postdesk, other, sender="bob@example.net")

    rows = cli_json(settings, "tickets", "list")
    assert [(r["subject"], r["messages"], r["contact"]) for r in rows] == [
        ("Invoice question", 1, "bob@example.net"),
        ("Printer on fire", 2, "alice@example.org"),
    ]
    assert {r["status"] for r in rows} == {"new"} and {r["queue"] for r in rows} == {"inbox"}

    printer = rows[1]["id"]
    detail = cli_json(settings, "tickets", "show", str(printer))
    assert detail["id"] == printer and detail["department"] == "Support"
    assert {"alice@example.org", "support@example.com"} <= set(detail["participants"])
    assert [m["thread_rule"] for m in detail["messages"]] == ["new", "reference"]
    assert [m["message_id"] for m in detail["messages"]][0] == first_id
    assert "Still burning." in detail["messages"][1]["text"]
    [attachment] = detail["messages"][0]["attachments"]
    assert attachment["filename"] == "report.pdf" and attachment["size"] == len(b"%PDF-1.4 fake\n")

    text = cli(settings, "tickets", "show", str(printer))
    assert text.returncode == 0 and "Printer on fire" in text.stdout and "report.pdf" in text.stdout
    listing = cli(settings, "tickets", "list")
    assert listing.returncode == 0 and "Invoice question" in listing.stdout


def test_brackets_in_mail_are_shown_as_written_not_taken_for_styles(postdesk, settings):
    subject = "[/x] [urgent] [#1]"  # once a traceback (MarkupError), or silently cut to "  "
    raw, _ = mail(subject, sender="[/b] Eve [red] <eve@example.org>", attachment=("[bold]a.pdf", b"%PDF-1.4\n"))
    deliver(postdesk, raw, sender="eve@example.org")
    [row] = cli_json(settings, "tickets", "list")

    listing = cli(settings, "tickets", "list")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert subject in listing.stdout
    shown = cli(settings, "tickets", "show", str(row["id"]))
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert f"#{row['id']} {subject}  [new, inbox]" in shown.stdout
    assert f"Subject: {subject}" in shown.stdout and "[bold]a.pdf" in shown.stdout
    assert "From: [/b] Eve [red] <eve@example.org>" in shown.stdout


def test_tickets_list_filters_by_status(postdesk, settings):
    raw, _ = mail("Hello")
    deliver(postdesk, raw)
    assert len(cli_json(settings, "tickets", "list", "--status", "new")) == 1
    assert cli_json(settings, "tickets", "list", "--status", "closed") == []


def test_showing_a_ticket_that_does_not_exist_is_a_clear_error(settings, data_folder):
    assert_clean_failure(cli(settings, "tickets", "show", "999"), "no ticket 999")


def test_a_bad_setting_is_a_clear_error(settings):
    env = settings_env(settings)
    env["POSTDESK_SMTP_PORT"] = "70000"
    done = cli(settings, "status", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == ["error: POSTDESK_SMTP_PORT: Input should be less than or equal to 65535"]


def test_a_mail_without_from_shows_its_envelope_sender(postdesk, settings):
    deliver(postdesk, b"Subject: hello\r\n\r\nIt works.\r\n", sender="me@example.com")
    [row] = cli_json(settings, "tickets", "list")
    shown = cli(settings, "tickets", "show", str(row["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "From: me@example.com (envelope sender; the mail has no From)" in shown.stdout
    assert "contact: (none)" in shown.stdout and "None" not in shown.stdout


def test_the_readme_test_mail_has_a_sender_and_a_subject(postdesk, settings):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [command] = re.findall(r"^python3 -c (\".*smtplib.*\")$", readme, re.M)
    code = shlex.split(command)[0].replace("2525", str(postdesk.port)).replace("@localhost", "@example.com")
    sent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    postdesk.drain()
    [row] = cli_json(settings, "tickets", "list")
    assert row["subject"] == "hello" and row["contact"] == "me@example.com"
    shown = cli(settings, "tickets", "show", str(row["id"])).stdout
    assert "From: me@example.com\n" in shown and "Subject: hello" in shown and "It works." in shown


def test_tickets_show_gives_the_spam_score_verdict_and_evidence(postdesk, settings):
    teach(postdesk)
    deliver(postdesk, spam_mail(7, "spam"), sender="promo7@deals.example.biz")
    [row] = cli_json(settings, "tickets", "list", "--queue", "spam")
    [message] = cli_json(settings, "tickets", "show", str(row["id"]))["messages"]
    verdict = message["spam"]
    shown = cli(settings, "tickets", "show", str(row["id"])).stdout
    assert f"spam: spam, score {verdict['score']:.4f} (decided by model, model version 1)" in shown
    evidence = re.search(r"^  evidence: (.*)$", shown, re.M)[1]
    assert evidence == ", ".join(verdict["evidence"]) and "casino" in evidence


def test_an_html_only_mail_is_shown_as_text_with_its_links(postdesk, settings):
    html = (
        "<html><head><style>p {color: red}</style></head><body><h1>Order shipped</h1>"
        "<p>Track <b>order</b> <a href='https://shop.example/track/1'>here</a>.</p>"
        "<ul><li>one lamp</li><li>two bulbs</li></ul><script>alert(1)</script></body></html>"
    )
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@example.net", "support@example.com", "Your order"
    msg.set_content(html, subtype="html")
    deliver(postdesk, msg.as_bytes(), sender="shop@example.net")
    [row] = cli_json(settings, "tickets", "list")
    shown = cli(settings, "tickets", "show", str(row["id"])).stdout
    assert "(HTML only; shown as text)" in shown
    assert "Order shipped" in shown and "[here](https://shop.example/track/1)" in shown
    assert re.search(r"^\s*\* one lamp$", shown, re.M) and "<p>" not in shown
    assert "color: red" not in shown and "alert(1)" not in shown


def test_listing_an_unknown_queue_names_the_queues(settings, data_folder):
    assert_clean_failure(
        cli(settings, "tickets", "list", "--queue", "bogus"),
        "no queue 'bogus': use inbox, review, spam, automatic, trash or merged",
    )
    assert_clean_failure(
        cli(settings, "tickets", "list", "--status", "done"),
        "no status 'done': use new, open, pending, resolved or closed",
    )


# --- a poison message --------------------------------------------------------------------------


class Fault:
    """A fake bug in the pipeline: it fails every message whose subject is "poison" while active."""

    def __init__(self):
        self.active = True
        self.calls = 0

    def __call__(self, ctx: pipeline.Context) -> None:
        if self.active and ctx.parsed.subject == "poison":
            self.calls += 1
            raise RuntimeError("injected fault for the poison message")


@pytest.fixture
def fault(monkeypatch) -> Fault:
    fault = Fault()
    stages = list(pipeline.STAGES)
    stages.insert(stages.index(pipeline.same_message_id), fault)
    monkeypatch.setattr(pipeline, "STAGES", tuple(stages))
    return fault


def stored_subjects(postdesk) -> list[str]:
    with postdesk.app.db.read() as session:
        return sorted(session.scalars(select(Message.subject).where(Message.ticket_id.is_not(None))))


def test_a_poison_message_goes_to_bad_without_blocking_the_others_and_can_be_retried(postdesk, settings, fault):
    with postdesk.client() as client:  # one connection, three messages: they usually share a batch
        for subject in ("before", "poison", "after"):
            client.sendmail("alice@example.org", ["support@example.com"], mail(subject)[0])
    postdesk.drain()

    assert stored_subjects(postdesk) == ["after", "before"]
    assert fault.calls >= settings.spool_max_attempts  # a failed batch is retried one by one, too
    assert cli_json(settings, "status")["spool"] == {"waiting": 0, "in_progress": 0, "bad": 1}
    [bad] = cli_json(settings, "spool", "list")
    assert bad["attempts"] == settings.spool_max_attempts and bad["source"] == "smtp"
    assert len(bad["errors"]) == settings.spool_max_attempts
    assert all("RuntimeError: injected fault for the poison message" in e for e in bad["errors"])
    listing = cli(settings, "spool", "list")
    assert bad["id"] in listing.stdout and "injected fault" in listing.stdout

    fault.active = False  # the bug is fixed; the operator puts the message back
    done = cli(settings, "spool", "retry", bad["id"])
    assert done.returncode == 0, done.stderr
    assert bad["id"] in done.stdout
    postdesk.drain()

    assert stored_subjects(postdesk) == ["after", "before", "poison"]
    assert cli_json(settings, "spool", "list") == []
    assert cli_json(settings, "status")["spool"]["bad"] == 0
    assert "poison" in [r["subject"] for r in cli_json(settings, "tickets", "list")]


def test_a_poison_message_spooled_in_a_group_goes_to_bad_alone(postdesk, settings, fault):
    replies = postdesk.send_together([mail(subject)[0] for subject in ("first", "before", "poison", "after")])
    postdesk.drain()

    assert [code for code, _ in replies] == [250] * 4
    assert stored_subjects(postdesk) == ["after", "before", "first"]
    [bad] = cli_json(settings, "spool", "list")
    assert bad["attempts"] == settings.spool_max_attempts
    assert cli_json(settings, "status")["spool"] == {"waiting": 0, "in_progress": 0, "bad": 1}


def test_an_unreadable_spool_file_is_set_aside_and_mail_keeps_flowing(postdesk, settings):
    (settings.spool_dir / "new" / "1-00000001.entry").write_bytes(b"\x00 damaged on disk")
    assert postdesk.send(mail("after")[0])[0] == 250
    postdesk.drain()
    assert stored_subjects(postdesk) == ["after"]
    assert cli_json(settings, "status")["spool"]["bad"] == 1
    [bad] = cli_json(settings, "spool", "list")
    assert bad["id"] == "1-00000001.entry.unreadable" and "unreadable" in bad["errors"][0]


def test_retrying_an_entry_that_is_not_in_bad_is_a_clear_error(settings, data_folder):
    assert_clean_failure(cli(settings, "spool", "retry", "nonexistent"), "not a spool id")


def test_retry_takes_only_entry_ids_not_paths(settings):
    spool = Spool(settings.spool_dir)
    entry_id = spool.put(b"Subject: x\r\n\r\nx\r\n", Envelope())
    spool.claim(entry_id)  # held by a runner, in cur/
    done = cli(settings, "spool", "retry", f"../cur/{entry_id}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert spool.depth() == {"new": 0, "cur": 1, "bad": 0}


# --- blobs -------------------------------------------------------------------------------------


def test_blobs_sweep_removes_files_nothing_uses_and_says_when_a_counted_one_is_missing(postdesk, settings):
    raw, _ = mail("Files", attachment=("a.pdf", b"%PDF-1.4 kept"))
    deliver(postdesk, raw)
    blobs = postdesk.app.blobs
    [counted] = [p for p in blobs.root.glob("??/*")]
    orphan = blobs.path(blobs.put(b"a rolled-back batch's file"))
    done = cli(settings, "blobs", "sweep")
    assert done.returncode == 0, done.stderr
    assert "removed 1 blobs nothing uses" in done.stdout
    assert not orphan.exists() and counted.read_bytes() == b"%PDF-1.4 kept"
    counted.unlink()
    assert_clean_failure(cli(settings, "blobs", "sweep"), "1 blob files the database counts are missing")


# --- settings ----------------------------------------------------------------------------------


def test_settings_reference_prints_every_setting_with_its_default(settings):
    done = cli(settings, "settings", "--reference")
    assert done.returncode == 0, done.stderr
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `POSTDESK_([A-Z0-9_]+)` \| `([^`]*)` \|", done.stdout, re.M)}
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    assert rows["SPOOL_MAX_ATTEMPTS"] == "3" and rows["SMTP_PORT"] == "2525"
    for name, field in Settings.model_fields.items():
        assert field.description in done.stdout, name


# --- serve -------------------------------------------------------------------------------------


def read_banner(proc: subprocess.Popen, timeout: float = 60) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Then:"):
            return lines
    raise AssertionError(f"no complete banner (exit {proc.poll()}): {lines}")


def test_serve_says_where_the_data_lives_and_how_to_send_a_test_mail_and_stops_on_sigterm(settings, tmp_path):
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "postdesk", "serve"],
            env=settings_env(settings),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            banner = read_banner(proc)
            text = "\n".join(banner)
            assert f"Data folder: {settings.data_dir.resolve()}" in text
            port = int(
                re.search(
                    r"^SMTP: 127\.0\.0\.1:(\d+), mailboxes: support@example\.com, billing@example\.com$", text, re.M
                )[1]
            )
            assert f"swaks --server 127.0.0.1:{port} --from me@example.com --to support@example.com" in text
            # the printed command, run as printed, delivers a mail that becomes a ticket
            [command] = [line.split("or: ", 1)[1] for line in banner if line.strip().startswith("or: python3 -c")]
            argv = shlex.split(command)
            assert argv[0] == "python3"
            sent = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60)
            assert sent.returncode == 0, sent.stderr
            rows = wait_for(lambda: cli_json(settings, "tickets", "list"), 60, what="the ticket", every=0.2)
            assert [r["subject"] for r in rows] == ["hello"]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
