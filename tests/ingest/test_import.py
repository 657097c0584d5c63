"""`postdesk import mbox|maildir PATH`: existing mail through the same spool and pipeline, with a summary."""

from __future__ import annotations

import json
import mailbox
import re
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import func, select

from corpus import corpus_files
from ingest.importer import unescape_mboxrd
from models import Message
from models.db import Database
from models.mail.parse import normalise_crlf, raw_sha256
from models.settings import Settings
from serve import settings_env

SUMMARY = "imported {}, duplicates {}, quarantined 0"
RUN = time.time_ns()


def cli(settings: Settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.strip().splitlines()[-1]


def tickets(settings: Settings) -> list[dict]:
    done = cli(settings, "tickets", "list", "--json", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def mail(n: int, subject: str, sender: str = "alice@example.org", in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Message-ID"] = f"<import-{n}.{RUN}@example.org>"
    msg["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(f"Message {n}.\n\nFrom here on, a line starting with From (mbox escapes it).\n")
    return msg.as_bytes()


def messages() -> list[bytes]:
    """Four distinct messages, the second a reply to the first, then the first one again."""
    first = mail(1, "Printer on fire")
    return [
        first,
        mail(2, "Re: Printer on fire", in_reply_to=f"<import-1.{RUN}@example.org>"),
        mail(3, "Invoice", sender="bob@example.net"),
        mail(4, "Password reset", sender="carol@example.com"),
        first,
    ]


def make_mbox(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(raw)
    box.close()
    return path


def make_maildir(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for raw in raws:
        box.add(raw)
    return path


def test_an_mbox_is_imported_with_a_summary_and_threaded(settings, tmp_path):
    path = make_mbox(tmp_path / "old.mbox", messages())
    assert summary(cli(settings, "import", "mbox", str(path))) == SUMMARY.format(4, 1)

    rows = {t["subject"]: t for t in tickets(settings)}
    assert set(rows) == {"Printer on fire", "Invoice", "Password reset"}
    assert rows["Printer on fire"]["messages"] == 2 and rows["Invoice"]["contact"] == "bob@example.net"
    done = cli(settings, "tickets", "show", str(rows["Printer on fire"]["id"]), "--json")
    thread = json.loads(done.stdout)["messages"]
    assert [m["thread_rule"] for m in thread] == ["new", "reference"]
    assert {m["source"] for m in thread} == {"import"}
    assert "\nFrom here on" in thread[0]["text"]  # mbox's ">From " escaping undone, not stored


def test_an_mboxrd_files_from_escaping_is_undone_exactly(settings, tmp_path):
    path = tmp_path / "rd.mbox"
    path.write_bytes(
        b"From alice@example.org Mon Jan  1 10:00:00 2024\n"
        b"From: alice@example.org\nTo: support@example.com\nSubject: Escapes\n"
        b"Message-ID: <escapes.%d@example.org>\n\n"
        % RUN
        + b">From here on, a body line.\n>>From a quoted one.\n>>>From a doubly quoted one.\n"
        b">Fromage is not escaped.\n\n"
    )
    assert summary(cli(settings, "import", "mbox", str(path))) == SUMMARY.format(1, 0)
    [row] = tickets(settings)
    [message] = json.loads(cli(settings, "tickets", "show", str(row["id"]), "--json").stdout)["messages"]
    assert message["text"].splitlines() == [
        "From here on, a body line.",
        ">From a quoted one.",
        ">>From a doubly quoted one.",
        ">Fromage is not escaped.",
    ]


def escape_mboxrd(raw: bytes) -> bytes:
    """What an mboxrd writer does to a message's lines."""
    return re.sub(rb"^(>*From )", rb">\1", raw, flags=re.MULTILINE)


@given(st.lists(st.sampled_from([b"From ", b">", b"From", b" ", b"x", b"\n", b"\r\n", b">From "]), max_size=40))
def test_undoing_mboxrd_escaping_gives_back_any_message(pieces):
    raw = b"".join(pieces)
    assert unescape_mboxrd(escape_mboxrd(raw)) == raw


def test_importing_the_same_mbox_again_finds_only_duplicates(settings, tmp_path):
    path = make_mbox(tmp_path / "old.mbox", messages())
    assert summary(cli(settings, "import", "mbox", str(path))) == SUMMARY.format(4, 1)
    assert summary(cli(settings, "import", "mbox", str(path))) == SUMMARY.format(0, 5)
    assert len(tickets(settings)) == 3


def test_the_summary_counts_what_serves_runner_stored_too(postdesk, settings, tmp_path):
    """A runner is already draining the spool (as under `postdesk serve`) and takes the entries too."""
    raws = [mail(n, f"Question {n}") for n in range(100, 180)]
    path = make_mbox(tmp_path / "old.mbox", raws + raws[:3])
    assert summary(cli(settings, "import", "mbox", str(path))) == SUMMARY.format(80, 3)
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 80


def test_a_maildir_is_imported_with_a_summary(settings, tmp_path):
    raws = messages()
    del raws[1]  # a Maildir has no order, so no reply here
    path = make_maildir(tmp_path / "Maildir", raws)
    assert summary(cli(settings, "import", "maildir", str(path))) == SUMMARY.format(3, 1)
    assert sorted(t["subject"] for t in tickets(settings)) == ["Invoice", "Password reset", "Printer on fire"]
    assert summary(cli(settings, "import", "maildir", str(path))) == SUMMARY.format(0, 4)


def assert_clean_failure(done: subprocess.CompletedProcess, says: str) -> None:
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error:") and says in line, done.stderr


def test_a_wrong_path_or_kind_is_a_clear_error(settings, tmp_path):
    mbox = make_mbox(tmp_path / "old.mbox", messages())
    maildir = make_maildir(tmp_path / "Maildir", messages())
    missing = tmp_path / "nothing-here.mbox"
    assert_clean_failure(cli(settings, "import", "mbox", str(missing)), f"{missing} is not an mbox file")
    assert_clean_failure(cli(settings, "import", "mbox", str(maildir)), "is not an mbox file")
    assert_clean_failure(cli(settings, "import", "maildir", str(mbox)), "is not a Maildir")
    assert_clean_failure(cli(settings, "import", "maildir", str(tmp_path / "nope")), "is not a Maildir")
    assert_clean_failure(cli(settings, "import", "pst", str(mbox)), "unknown mailbox kind 'pst'")
    assert not settings.data_dir.exists()  # nothing to import: no data folder made for it


def test_a_single_message_file_is_not_mistaken_for_an_empty_mbox(settings, tmp_path):
    eml = tmp_path / "one.eml"
    eml.write_bytes(messages()[0])
    assert_clean_failure(cli(settings, "import", "mbox", str(eml)), "is not an mbox file")


@pytest.mark.corpus
def test_the_corpus_imported_as_an_mbox_lands_on_tickets(settings, tmp_path, corpus_dir):
    path = tmp_path / "corpus.mbox"
    box = mailbox.mbox(path)
    files = list(corpus_files(corpus_dir))  # all 3,000: about 30 s on SQLite, 40 s on PostgreSQL here
    for _, file in files:
        box.add(file.read_bytes())  # its `From ` line becomes the separator; body `From ` lines are escaped
    box.close()
    box = mailbox.mbox(path)
    assert len(box) == len(files) == 3000
    distinct = {raw_sha256(normalise_crlf(unescape_mboxrd(box.get_bytes(key)))) for key in box.keys()}
    box.close()

    assert summary(cli(settings, "import", "mbox", str(path), timeout=600)) == SUMMARY.format(
        len(distinct), len(files) - len(distinct)
    )
    db = Database(settings.sqlalchemy_url)
    try:
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == len(distinct)
            assert session.scalar(select(func.count()).where(Message.ticket_id.is_(None))) == 0
            assert set(session.scalars(select(Message.raw_sha256))) == distinct
    finally:
        db.dispose()
