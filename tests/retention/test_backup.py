"""Backups through the real command line: `postdesk backup create` while `serve` runs, `verify`,
`list`, and `restore` into a fresh data folder (and, on PostgreSQL, a fresh database) that replays
the erasure ledger first, so that a person erased after the backup is not back: the canary scan
finds nothing. Damaged backups, a missing manifest, a target in use: a clear error, exit 1, and
nothing half-restored left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select

from canary import Canaries
from conftest import PG_URL, new_pg_database
from models import AuditEvent, Message, SpamLabel
from models.db import Database
from postdesk.app import App
from retention.backup import MANIFEST, create_backup, expire_backups, list_backups
from retention.backup_database import pg_is_empty
from retention.ledger import ErasureLedger
from serve import settings_env
from test_canary import BOB, _leave_in_spool_bad, bobs_mail, learn, save_version, send, stored, their_mail


@pytest.fixture
def restore_url(tmp_path, pg_template):
    """A database nobody uses yet, to restore into: a new file, or a new PostgreSQL database."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'restored' / 'postdesk.db'}"
        return
    with new_pg_database() as url:
        yield url


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args], env=env, capture_output=True, text=True, timeout=300
    )


def restored_env(settings, tmp_path: Path, restore_url: str, **overrides) -> dict:
    return settings_env(
        settings.model_copy(update={"data_dir": tmp_path / "restored", "database_url": restore_url}), **overrides
    )


def test_a_restored_backup_brings_back_nobody_erased_after_it(settings, serve, tmp_path, restore_url):
    c = Canaries.new()
    env = settings_env(settings)
    server = serve()
    app = App.open(settings)
    try:
        bob = bobs_mail(0, "printer broken invoice refund")
        send(server.port, bob, BOB)
        theirs = [their_mail(c, 1, full=True), their_mail(c, 2)]
        for msg in theirs:
            send(server.port, msg, c["address"])
        b, p = stored(app, bob["Message-ID"]), [stored(app, msg["Message-ID"]) for msg in theirs]
        learn(app, b, "ham"), learn(app, p[0], "spam")
        save_version(app)  # a saved spam model version that learned their mail
        _leave_in_spool_bad(app.spool, their_mail(c, 3).as_bytes(), c["address"], tmp_path)

        made = run(env, "backup", "create", "--json")  # while serve runs
        assert made.returncode == 0, made.stderr
        backup = Path(json.loads(made.stdout)["path"])
        assert backup.parent == settings.data_dir / "backups"
        assert {f.canary for f in _scan_backup(c, backup)} == set(c.values), "the backup holds every canary"

        erased = run(env, "privacy", "erase", c["address"], "--yes", "--json")
        assert erased.returncode == 0, erased.stderr
    finally:
        assert server.terminate() == 0
        app.db.dispose()
    assert run(env, "backup", "verify", str(backup)).returncode == 0

    done = run(
        restored_env(settings, tmp_path, restore_url),
        "backup",
        "restore",
        str(backup),
        "--ledger",
        str(settings.erasure_ledger_path),
        "--json",
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (
        report["ledger_entries"] >= 2 and report["erased_again_messages"] == 2 and report["spool_entries_dropped"] == 2
    )
    restored = tmp_path / "restored"
    assert c.scan_tree(restored) == []
    db = Database(restore_url)
    try:
        if not db.is_sqlite:
            assert c.scan_database(db.engine) == []
        with db.read() as session:
            assert session.scalars(select(Message.message_id_header)).all() == [bob["Message-ID"].strip("<>")]
            assert session.scalar(select(func.count()).select_from(SpamLabel)) == 1  # Bob's, theirs forgotten
            [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup-restore")).all()
            assert event.details["counts"]["erased_again_messages"] == 2 and event.details["ledger"] == "replayed"
    finally:
        db.dispose()
    assert (restored / "erasure" / "ledger.jsonl").read_bytes() == settings.erasure_ledger_path.read_bytes()
    listed = run(env, "tickets", "list", "--json")
    assert listed.returncode == 0


def _scan_backup(c: Canaries, backup: Path) -> list:
    """Every file of the backup, a PostgreSQL dump as the SQL it holds (its data is compressed)."""
    found = c.scan_tree(backup)
    if (backup / "database.pgdump").exists():
        sql = subprocess.run(
            ["pg_restore", "--file=-", str(backup / "database.pgdump")], capture_output=True, check=True
        )
        found += c.scan_bytes(sql.stdout, "database.pgdump as SQL")
    return found


def test_backup_create_is_in_the_audit_trail_with_counts(settings, ann, tmp_path):
    env = settings_env(settings)
    made = run(env, "backup", "create", str(tmp_path / "one"), "--actor", "night-job")
    assert made.returncode == 0, made.stderr
    assert "wrote" in made.stdout and "1 attachment files" in made.stdout
    with ann.app.db.read() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "backup-create")).all()
    assert event.actor == "night-job" and event.details["backup"] == "one"
    assert event.details["counts"]["blob_files"] == 1 and event.details["files"] >= 2
    assert "ann@example.org" not in json.dumps(event.details)


@pytest.fixture
def ann(postdesk):
    """The in-process Postdesk of conftest with one message from Ann holding an attachment."""
    raw = (
        b"From: ann@example.org\r\nTo: support@example.com\r\nSubject: scan\r\nMessage-ID: <scan@example.org>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
        b"\r\nhello\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        b"\r\n%PDF-1.4 " + os.urandom(8).hex().encode() + b"\r\n--b--\r\n"
    )
    code, _ = postdesk.send(raw, sender="ann@example.org")
    assert code == 250
    postdesk.drain()
    return postdesk


def _backup(settings, tmp_path: Path) -> Path:
    """A backup of the store, and a live erasure ledger (as after an erasure of someone else)."""
    ledger = ErasureLedger(settings.erasure_ledger_path)
    ledger.append({"kind": "spool", "job": "earlier", "raw": [ledger.hmac("0" * 64)]})
    made = run(settings_env(settings), "backup", "create", str(tmp_path / "backup"))
    assert made.returncode == 0, made.stderr
    return tmp_path / "backup"


def _nothing_restored(tmp_path: Path, restore_url: str) -> None:
    assert not (tmp_path / "restored").exists()
    assert not list(tmp_path.glob(".restored.restoring-*"))
    if not restore_url.startswith("sqlite"):
        db = Database(restore_url)
        try:
            assert pg_is_empty(db.engine)
        finally:
            db.dispose()


@pytest.mark.parametrize("damage", ["truncate a blob", "flip a byte of the database", "delete a blob"])
def test_a_damaged_backup_is_named_by_verify_and_restores_nothing(settings, ann, tmp_path, restore_url, damage):
    backup = _backup(settings, tmp_path)
    blob = next(p for p in (backup / "data" / "blobs").rglob("*") if p.is_file())
    database = next(backup.glob("database.*"))
    if damage == "truncate a blob":
        blob.write_bytes(blob.read_bytes()[:5])
        bad, why = blob, "truncated"
    elif damage == "delete a blob":
        blob.unlink()
        bad, why = blob, "missing"
    else:
        data = bytearray(database.read_bytes())
        data[len(data) // 2] ^= 0xFF
        database.write_bytes(bytes(data))
        bad, why = database, "sha256 differs"
    name = bad.relative_to(backup).as_posix()

    checked = run(settings_env(settings), "backup", "verify", str(backup))
    assert checked.returncode == 1 and name in checked.stderr and why in checked.stderr, checked.stderr
    done = run(
        restored_env(settings, tmp_path, restore_url),
        "backup",
        "restore",
        str(backup),
        "--ledger",
        str(settings.erasure_ledger_path),
    )
    assert done.returncode == 1 and name in done.stderr and "Traceback" not in done.stderr, done.stderr
    _nothing_restored(tmp_path, restore_url)


def test_a_backup_without_its_manifest_is_refused(settings, ann, tmp_path, restore_url):
    backup = _backup(settings, tmp_path)
    (backup / MANIFEST).unlink()
    for command in (["verify", str(backup)], ["restore", str(backup), "--without-ledger"]):
        done = run(restored_env(settings, tmp_path, restore_url), "backup", *command)
        assert done.returncode == 1 and f"has no {MANIFEST}" in done.stderr, done.stderr
    _nothing_restored(tmp_path, restore_url)
    (backup / MANIFEST).write_text('{"format": "postdesk-backup", "vers')  # cut short
    done = run(settings_env(settings), "backup", "verify", str(backup))
    assert done.returncode == 1 and "is damaged (not valid JSON)" in done.stderr


def test_restore_refuses_a_data_folder_or_database_in_use(settings, ann, tmp_path, restore_url):
    backup = _backup(settings, tmp_path)
    (tmp_path / "restored").mkdir()
    (tmp_path / "restored" / "notes.txt").write_text("mine")
    done = run(
        restored_env(settings, tmp_path, restore_url),
        "backup",
        "restore",
        str(backup),
        "--ledger",
        str(settings.erasure_ledger_path),
    )
    assert done.returncode == 1 and "is not empty (notes.txt)" in done.stderr, done.stderr
    assert [p.name for p in (tmp_path / "restored").iterdir()] == ["notes.txt"]
    if PG_URL:  # the live database, which has tables
        (tmp_path / "restored" / "notes.txt").unlink()
        done = run(
            restored_env(settings, tmp_path, settings.database_url),
            "backup",
            "restore",
            str(backup),
            "--ledger",
            str(settings.erasure_ledger_path),
        )
        assert done.returncode == 1 and "is not empty: restore into a new, empty database" in done.stderr


def test_restore_wants_the_erasure_ledger_or_to_be_told_to_go_without(settings, ann, tmp_path, restore_url):
    backup = _backup(settings, tmp_path)
    env = restored_env(settings, tmp_path, restore_url)
    refused = run(env, "backup", "restore", str(backup))
    assert refused.returncode == 1 and "there is no erasure ledger" in refused.stderr
    assert "--without-ledger" in refused.stderr
    _nothing_restored(tmp_path, restore_url)

    done = run(env, "backup", "restore", str(backup), "--without-ledger")
    assert done.returncode == 0, done.stderr
    assert "warning: restoring without the erasure ledger" in done.stderr
    listed = run(env, "tickets", "list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1


def test_backups_are_listed_and_those_older_than_the_setting_expire(settings, ann, tmp_path):
    app = ann.app
    folder = settings.backup_folder
    first = create_backup(app.db, settings.data_dir, folder / "first")
    second = create_backup(app.db, settings.data_dir, folder / "second")
    listed = run(settings_env(settings), "backup", "list")
    assert listed.returncode == 0 and "first" in listed.stdout and "second" in listed.stdout

    assert expire_backups(settings, second.created_at + timedelta(days=29)) == 0
    keep_one = first.created_at + timedelta(days=30) + (second.created_at - first.created_at) / 2
    assert expire_backups(settings, keep_one) == 1
    assert (
        expire_backups(settings.model_copy(update={"backup_keep_days": 0}), datetime.now(UTC) + timedelta(days=999))
        == 0
    )
    assert expire_backups(settings, datetime.now(UTC) + timedelta(days=31)) >= 1
    assert list_backups(folder) == []


@pytest.mark.skipif(not PG_URL, reason="pg_dump is for PostgreSQL")
def test_without_pg_dump_create_says_what_to_install(settings, ann, tmp_path):
    done = run(settings_env(settings) | {"PATH": str(tmp_path / "empty")}, "backup", "create", str(tmp_path / "b"))
    assert done.returncode == 1 and "pg_dump is not installed" in done.stderr and "postgresql-client" in done.stderr
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.partial"))
