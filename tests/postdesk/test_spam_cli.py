"""`postdesk spam …` as an admin runs it, beside a running `postdesk serve` in another process."""

from __future__ import annotations

import json
import re
import smtplib
import subprocess
import sys

import pytest
from sqlalchemy import select

from models import Message, SpamVerdict
from models.db import Database
from serve import settings_env
from waiting import wait_for

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tickets")
from test_spam_flow import raw  # noqa: E402  (the same synthetic ham and spam)


def spam_cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postdesk", "spam", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def folders(tmp_path):
    for kind in ("ham", "spam"):
        (tmp_path / kind).mkdir()
        for i in range(25):
            (tmp_path / kind / f"{i:03d}.eml").write_bytes(raw(500 + i, kind))
    return tmp_path


def test_train_versions_score_and_rollback(settings, folders):
    trained = spam_cli(settings, "train", "--ham", str(folders / "ham"), "--spam", str(folders / "spam"))
    assert trained.returncode == 0, trained.stderr
    [summary] = [line for line in trained.stdout.splitlines() if line.startswith("version 1 active; ")]
    assert re.search(r"1-ROCA \d+(\.\d{1,4})? %", summary), summary  # rounded, not 0.0011199999999988997
    assert not re.search(r"\d\.\d{5,}", summary), summary
    scored = spam_cli(settings, "score", str(folders / "spam" / "000.eml"), str(folders / "ham" / "000.eml"))
    lines = [line.split("\t") for line in scored.stdout.splitlines()]
    assert [(verdict) for _, _, verdict in lines] == ["spam", "ham"]
    as_json = json.loads(
        spam_cli(
            settings, "score", "--json", str(folders / "spam" / "000.eml"), str(folders / "ham" / "000.eml")
        ).stdout
    )
    assert [(row["path"], row["score"], row["verdict"]) for row in as_json] == [
        (path, float(score), verdict) for path, score, verdict in lines
    ]  # every digit, in both forms
    assert all(repr(float(score)) == score for _, score, _ in lines) and all(row["evidence"] for row in as_json)
    assert [row["coverage"] for row in as_json] == [1.0, 1.0]  # both were learned: every feature seen
    assert spam_cli(settings, "retrain", "--note", "second").returncode == 0
    listed = spam_cli(settings, "versions")
    assert "second" in listed.stdout and "ledger: 25 ham, 25 spam" in listed.stdout
    assert not re.search(r"\d\.\d{5,}", listed.stdout), listed.stdout
    assert spam_cli(settings, "activate", "1").returncode == 0
    missing = spam_cli(settings, "activate", "99")
    assert missing.returncode == 1 and "no spam model version 99" in missing.stderr


def test_learn_and_unlearn_files(settings, folders):
    spam_cli(settings, "train", "--ham", str(folders / "ham"), "--spam", str(folders / "spam"))
    probe = folders / "probe.eml"
    probe.write_bytes(raw(9000, "ham"))
    assert "learned 1 as spam" in spam_cli(settings, "learn", "--spam", str(probe)).stdout
    assert "relabelled 1 as ham" in spam_cli(settings, "learn", "--ham", str(probe)).stdout
    assert "learned as the other label 1" in spam_cli(settings, "unlearn", "--spam", str(probe)).stdout
    assert "unlearned 1" in spam_cli(settings, "unlearn", "--ham", str(probe)).stdout
    no_label = spam_cli(settings, "learn", str(probe))
    assert no_label.returncode == 1 and "--spam or --ham" in no_label.stderr


def test_allow_and_block_from_the_command_line(settings):
    assert "example.net: allow" in spam_cli(settings, "allow", "@Example.NET").stdout
    assert "bad@example.org: block" in spam_cli(settings, "block", "bad@example.org").stdout
    assert "removed" in spam_cli(settings, "block", "--remove", "bad@example.org").stdout
    assert spam_cli(settings, "allow", "not an address").returncode == 1


def verdict_for(db: Database, subject: str, timeout: float = 30) -> tuple[int, SpamVerdict]:
    def row():
        with db.read() as session:
            return session.execute(
                select(Message.id, SpamVerdict).join(SpamVerdict).where(Message.subject == subject)
            ).first()

    found = wait_for(row, timeout, what=f"the verdict on {subject!r}")
    return found[0], found[1]


def test_an_agents_decision_in_another_process_reaches_the_running_runner(settings, folders, tmp_path, serve):
    spam_cli(settings, "train", "--ham", str(folders / "ham"), "--spam", str(folders / "spam"))
    server = serve()
    db = Database(settings.sqlalchemy_url)
    try:
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            client.sendmail("a@example.org", ["support@example.com"], raw(1, "spam"))
        message_id, before = verdict_for(db, "spam 1")
        assert before.verdict == "spam"
        for i in range(30):
            (tmp_path / "wanted").mkdir(exist_ok=True)
            (tmp_path / "wanted" / f"{i}.eml").write_bytes(raw(3000 + i, "spam"))
        taught = spam_cli(settings, "learn", "--ham", "--message", str(message_id), str(tmp_path / "wanted"))
        assert taught.returncode == 0, taught.stderr
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            client.sendmail("a@example.org", ["support@example.com"], raw(1, "spam").replace(b"spam 1", b"spam 1b"))
        _, after = verdict_for(db, "spam 1b")
        assert after.score < before.score and after.verdict != "spam"
    finally:
        server.terminate()
        db.dispose()


def test_evaluate_reports_the_figures_and_writes_the_scores(settings, folders, tmp_path):
    scores = tmp_path / "scores.tsv"
    result = spam_cli(
        settings,
        "evaluate",
        "--ham",
        str(folders / "ham"),
        "--spam",
        str(folders / "spam"),
        "--folds",
        "5",
        "--scores",
        str(scores),
    )
    assert result.returncode == 0, result.stderr
    assert "5-fold" in result.stdout and "false positives 0 (0 % of decided ham)" in result.stdout
    assert re.search(r"1-ROCA \d+(\.\d{1,4})? %", result.stdout)
    rows = scores.read_text().splitlines()
    assert rows[0].split("\t") == ["path", "label", "score", "verdict"] and len(rows) == 51
    both = spam_cli(
        settings, "evaluate", "--ham", str(folders / "ham"), "--spam", str(folders / "spam"), "--folds", "5", "--online"
    )
    assert both.returncode == 1 and "exactly one" in both.stderr
