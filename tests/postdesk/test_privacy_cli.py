"""`postdesk privacy erase` and `postdesk privacy export` as an operator runs them: a child process
on the data folder that mail reached over SMTP."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from sqlalchemy import func, select

from models import AuditEvent, Message
from serve import settings_env
from test_cli import assert_clean_failure, mail

ANN = "ann@example.org"


def privacy(settings, *args: str, typed: str = "", actor: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", "privacy", *args],
        env=settings_env(settings),
        input=typed,
        capture_output=True,
        text=True,
        timeout=300,
    )


def deliver(postdesk, raw: bytes, sender: str = ANN) -> None:
    assert postdesk.send(raw, sender=sender)[0] == 250
    postdesk.drain()


def stored(postdesk) -> int:
    with postdesk.app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Message))


def test_erase_shows_what_will_go_and_erases_only_once_the_address_is_typed_back(postdesk):
    deliver(postdesk, mail("My printer", sender=f"Ann <{ANN}>", attachment=("scan.pdf", b"%PDF-1.4 scan"))[0])
    deliver(postdesk, mail("Other", sender="bob@example.net")[0], sender="bob@example.net")

    refused = privacy(postdesk.settings, "erase", ANN, typed="bob@example.net\n")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().endswith("error: not confirmed: nothing was erased")
    assert "1  messages" in refused.stdout and "1  attachments" in refused.stdout
    assert stored(postdesk) == 2

    done = privacy(postdesk.settings, "erase", ANN, "--actor", "dpo@example.com", typed=" ANN@Example.org \n")
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout[done.stdout.index("{") :])
    assert receipt["counts"]["messages"] == 1 and receipt["mode"] == "delete" and len(receipt["receipt"]) == 36
    assert stored(postdesk) == 1
    with postdesk.app.db.read() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "privacy-erase")).all()
    assert event.actor == "dpo@example.com" and event.details["receipt"] == receipt["receipt"]


def test_erase_with_yes_and_json_prints_only_the_receipt_and_the_actor_defaults_to_the_os_user(postdesk):
    deliver(postdesk, mail("Hello")[0])
    done = privacy(postdesk.settings, "erase", ANN, "--yes", "--json", "--mode", "anonymise")
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    assert set(receipt) == {"receipt", "finished_at", "mode", "address_hmac_sha256", "counts"}
    assert receipt["counts"]["shells"] == 1 and ANN not in done.stdout
    with postdesk.app.db.read() as session:
        assert session.scalar(select(AuditEvent.actor).where(AuditEvent.action == "privacy-erase")).startswith("os:")


def test_erase_of_an_unknown_contact_or_in_a_bad_mode_is_one_clean_line(postdesk):
    assert_clean_failure(privacy(postdesk.settings, "erase", "4711", "--yes"), "no contact 4711")
    assert_clean_failure(privacy(postdesk.settings, "erase", ANN, "--mode", "shred"), "--mode")
    assert_clean_failure(privacy(postdesk.settings, "erase", "not an address", "--yes"), "give an address")


def test_export_writes_a_zip_of_json_the_original_mail_attachments_and_a_readme(postdesk, tmp_path):
    first, first_id = mail("My printer", sender=f"Ann <{ANN}>", attachment=("scan.pdf", b"%PDF-1.4 scan"))
    deliver(postdesk, first)
    deliver(postdesk, mail("Re: My printer", sender=ANN, in_reply_to=first_id)[0])
    deliver(postdesk, mail("Not hers", sender="bob@example.net")[0], sender="bob@example.net")
    target = tmp_path / "ann.zip"

    done = privacy(postdesk.settings, "export", ANN, "-o", str(target), "--actor", "dpo")

    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        messages = json.loads(archive.read("messages.json"))
        contact = json.loads(archive.read("contact.json"))
        tickets = json.loads(archive.read("tickets.json"))
        readme = archive.read("README.txt").decode()
        [eml] = [n for n in names if n == f"messages/{messages[0]['id']}.eml"]
        assert archive.read(eml) == first
        [attachment] = messages[0]["attachments"]
        assert archive.read(attachment["file"]) == b"%PDF-1.4 scan" and attachment["filename"] == "scan.pdf"
    assert [m["subject"] for m in messages] == ["My printer", "Re: My printer"]
    assert contact["address"] == ANN and contact["contact"]["name"] == "Ann" and len(tickets) == 1
    assert "messages.json" in readme and "attachments/" in readme
    with postdesk.app.db.read() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "privacy-export")).all()
    assert event.actor == "dpo" and event.details["counts"]["messages"] == 2 and ANN not in str(event.details)
    assert_clean_failure(privacy(postdesk.settings, "export", ANN, "-o", str(target)), "exists already")
