"""evaluate_folders: reads two folders like the corpus, runs CV or online, writes per-message scores."""

from __future__ import annotations

import csv

import pytest

from classifier.report import evaluate_folders


def _write(folder, name, sender, subject, body, day):
    folder.mkdir(parents=True, exist_ok=True)
    raw = (
        f"From {sender}  Thu Aug 22 08:00:00 2002\n"
        f"From: {sender}\nTo: support@example.org\nSubject: {subject}\n"
        f"Date: Thu, {day} Aug 2002 08:17:21 -0400\nMessage-ID: <{name}@x>\n\n{body}\n"
    )
    (folder / name).write_bytes(raw.encode())


@pytest.fixture
def folders(tmp_path):
    ham, spam = tmp_path / "ham", tmp_path / "spam" / "cur"  # a Maildir-like subfolder is read too
    for i in range(8):
        _write(
            ham,
            f"h{i}",
            "bob@dev.example.org",
            f"Re: build {i}",
            "the parser tests fail on the branch, see traceback",
            10 + i,
        )
        _write(
            spam,
            f"s{i}",
            f"promo{i}@deals.example.biz",
            "LIMITED OFFER",
            "buy cheap pills now, click http://deals.example.biz/win",
            10 + i,
        )
    (ham / ".hidden").write_bytes(b"not a message")
    return tmp_path / "ham", tmp_path / "spam"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_cross_validation_writes_every_message(folders, tmp_path):
    seen = []
    result = evaluate_folders(
        *folders,
        folds=4,
        online=False,
        scores_out=tmp_path / "out" / "scores.tsv",
        progress=lambda phase, done, total: seen.append(phase),
    )
    rows = _rows(tmp_path / "out" / "scores.tsv")
    assert rows[0] == ["path", "label", "score", "verdict"] and len(rows) == 17
    assert {r[1] for r in rows[1:]} == {"ham", "spam"} and all(r[3] in ("ham", "spam", "unsure") for r in rows[1:])
    assert (result["n_ham"], result["n_spam"], result["fp"], result["fn"]) == (8, 8, 0, 0)
    assert result["one_minus_roca"] == 0.0 and result["unsure"] == result["unsure_ham"] + result["unsure_spam"]
    assert "reading" in seen and "judging" in seen


def test_online_judges_in_time_order_and_counts_untrained_as_unsure(folders, tmp_path):
    result = evaluate_folders(*folders, folds=None, online=True, scores_out=tmp_path / "s.tsv")
    rows = _rows(tmp_path / "s.tsv")
    assert len(rows) == 17 and result["protocol"].startswith("online")
    assert result["unsure"] >= 1  # the first message is judged untrained
    assert result["fp"] == 0


def test_protocol_choice_is_checked(folders, tmp_path):
    with pytest.raises(ValueError):
        evaluate_folders(*folders, folds=5, online=True, scores_out=tmp_path / "x")
    with pytest.raises(ValueError):
        evaluate_folders(*folders, folds=None, online=False, scores_out=tmp_path / "x")
    with pytest.raises(ValueError):
        evaluate_folders(tmp_path / "missing", folders[1], folds=None, online=True, scores_out=tmp_path / "x")
