"""The data folder on the command line: a reading command never creates one (a mistyped --data-dir
is reported), the commands that bring data in create it and say so, and a folder this user may
only read answers reading commands and refuses writing ones in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NEEDS_A_FOLDER = [  # the reading commands, and those that change only what is already there
    ["tickets", "list"],
    ["tickets", "show", "1"],
    ["status"],
    ["spool", "list"],
    ["spool", "retry", "1-0.entry"],
    ["spam", "versions"],
    ["spam", "score", "{mail}"],
    ["imap", "status"],
    ["spam", "retrain"],
    ["spam", "activate", "1"],
    ["spam", "block", "--remove", "x@example.com"],
]


def postdesk(*args: str, cwd: Path, read_only: Path | None = None) -> subprocess.CompletedProcess:
    """`postdesk ARGS` in `cwd`; with `read_only`, that folder is a read-only mount for the command
    when the tests run as root (root may write anywhere else), else it was made read-only by chmod."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
    command = [sys.executable, "-m", "postdesk", *args]
    if read_only is not None and os.geteuid() == 0:
        command = [
            "unshare",
            "--mount",
            "sh",
            "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
            str(read_only),
            *command,
        ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


@pytest.mark.parametrize("args", NEEDS_A_FOLDER, ids=" ".join)
def test_a_command_at_a_mistyped_data_dir_says_there_is_none_and_creates_nothing(tmp_path, args):
    mail = tmp_path / "mail.eml"
    mail.write_bytes(b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
    done = postdesk(*[a.format(mail=mail) for a in args], "--data-dir", "dta", cwd=tmp_path)
    assert one_line_error(done).startswith(f"there is no data folder at {tmp_path / 'dta'} (check --data-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mail.eml"]


def test_a_folder_without_a_database_is_not_given_one_by_a_reading_command(tmp_path):
    (tmp_path / "data").mkdir()
    done = postdesk("tickets", "list", cwd=tmp_path)
    assert (
        one_line_error(done) == f"there is no Postdesk database at {tmp_path / 'data' / 'postdesk.db'} "
        "(`postdesk serve` creates it)"
    )
    assert list((tmp_path / "data").iterdir()) == []


def test_a_command_that_brings_data_in_creates_the_folder_and_says_so(tmp_path):
    done = postdesk("spam", "allow", "@example.com", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"Created the data folder {tmp_path / 'data'}"
    assert (tmp_path / "data" / "postdesk.db").is_file()
    again = postdesk("spam", "block", "x@example.org", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert postdesk("tickets", "list", cwd=tmp_path).returncode == 0


@pytest.fixture
def read_only_folder(tmp_path):
    """A data folder with a database, which `postdesk(..., read_only=folder)` may only read."""
    assert postdesk("spam", "allow", "@example.com", cwd=tmp_path).returncode == 0
    folder = tmp_path / "data"
    if os.geteuid() == 0:
        probe = postdesk("--help", cwd=tmp_path, read_only=folder)
        if probe.returncode != 0:
            pytest.skip(f"no read-only bind mount here: {probe.stderr.strip()}")
        yield folder
        return
    for path in (folder, *folder.rglob("*")):
        path.chmod(path.stat().st_mode & ~0o222)
    yield folder
    for path in (folder, *folder.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_data_folder_answers_reading_commands_and_refuses_writing_ones_in_one_line(read_only_folder):
    root = read_only_folder.parent
    listed = postdesk("tickets", "list", "--json", cwd=root, read_only=read_only_folder)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"
    assert postdesk("spam", "versions", cwd=root, read_only=read_only_folder).returncode == 0
    for args in (["spam", "allow", "@example.net"], ["spam", "retrain"], ["import", "mbox", "{mbox}"]):
        (root / "old.mbox").write_bytes(b"")
        done = postdesk(*[a.format(mbox=root / "old.mbox") for a in args], cwd=root, read_only=read_only_folder)
        assert one_line_error(done) == (
            f"cannot write to the data folder {read_only_folder} "
            "(a read-only disk, or no write permission for this user)"
        )
