"""Settings as a new user meets them on the command line: errors naming what the user wrote, the
values in effect with where each came from, and `--data-dir`/`--config` wherever they are typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MAILBOX = '[{"address": "help@example.com"}]'


def postdesk(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`postdesk ARGS` in `cwd` with no POSTDESK_ variables but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")} | env
    return subprocess.run(
        [sys.executable, "-m", "postdesk", *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


def errors(done: subprocess.CompletedProcess) -> list[str]:
    """The error lines of a command that failed on its settings: exit 2, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert all(line.startswith("error: ") for line in done.stderr.splitlines()), done.stderr
    return [line.removeprefix("error: ") for line in done.stderr.splitlines()]


def test_malformed_json_in_the_environment_names_each_variable_on_one_line(tmp_path):
    done = postdesk(
        "tickets",
        "list",
        cwd=tmp_path,
        POSTDESK_MAILBOXES='[{"address": "a@example.com",}]',
        POSTDESK_IMAP_ACCOUNTS="[{name: 'x'}]",
    )
    assert errors(done) == [
        "POSTDESK_MAILBOXES: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 30)",
        "POSTDESK_IMAP_ACCOUNTS: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 3)",
    ]


def test_a_malformed_toml_file_names_the_file_and_line(tmp_path):
    config = tmp_path / "postdesk.toml"
    config.write_text('smtp_port = 2626\n[[mailboxes]]\naddress = "help@example.com\n')
    [line] = errors(postdesk("status", "--config", str(config), cwd=tmp_path))
    assert line.startswith(f"{config}, line 3, column ")  # then tomllib's own words


def test_invalid_values_name_the_variable_or_the_file_and_line_one_line_each(tmp_path):
    config = tmp_path / "postdesk.toml"
    config.write_text('log_level = "LOUD"\n\n[[mailboxes]]\naddress = "help"\n')
    done = postdesk(
        "status",
        cwd=tmp_path,
        POSTDESK_CONFIG=str(config),
        POSTDESK_SMTP_PORT="99999",
        POSTDESK_IMAP_ACCOUNTS='[{"name": "a", "host": "h", "username": "u", "mailbox": "help@x.org", "tls": "maybe"}]',
    )
    assert errors(done) == [
        f"{config}, line 1: log_level: must be DEBUG, INFO, WARNING or ERROR",
        "POSTDESK_SMTP_PORT: Input should be less than or equal to 65535",
        f"{config}, line 4: mailboxes[0].address: 'help' is not a plain address such as support@example.com",
        "POSTDESK_IMAP_ACCOUNTS[0].tls: Input should be 'implicit', 'starttls' or 'plain'",
    ]


def test_a_config_file_that_is_not_there_is_one_line(tmp_path):
    assert errors(postdesk("settings", "--config", "nowhere.toml", cwd=tmp_path)) == [
        "nowhere.toml: no such settings file (named by --config or POSTDESK_CONFIG)"
    ]


def test_settings_shows_each_value_in_effect_and_where_it_came_from(tmp_path):
    config = tmp_path / "postdesk.toml"
    config.write_text(
        '# ours\nsmtp_port = 2626\nsecret_key = "do not show"\n[[mailboxes]]\naddress = "help@example.com"\n'
    )
    done = postdesk(
        "settings",
        "--data-dir",
        "elsewhere",
        cwd=tmp_path,
        POSTDESK_CONFIG=str(config),
        POSTDESK_MAX_RECIPIENTS="7",
        POSTDESK_DATABASE_URL="postgresql+psycopg://pd:hunter2@db/pd",
        POSTDESK_SMTP_PROT="25",
    )
    assert done.returncode == 0, done.stderr
    shown = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert shown["POSTDESK_DATA_DIR"].split()[1:] == ["elsewhere", "(--data-dir)"]
    assert shown["POSTDESK_SMTP_PORT"].split()[1:] == ["2626", f"({config},", "line", "2)"]
    assert shown["POSTDESK_MAX_RECIPIENTS"].split()[1:] == ["7", "(POSTDESK_MAX_RECIPIENTS)"]
    assert shown["POSTDESK_SPOOL_MAX_ATTEMPTS"].split()[1:] == ["3", "(default)"]
    assert shown["POSTDESK_MAILBOXES"].endswith(
        f'"acknowledgement_subject": "Re: {{subject}} [#{{ticket}}]"}}]  ({config}, line 4)'
    )
    assert "hunter2" not in done.stdout and "do not show" not in done.stdout
    assert "postgresql+psycopg://pd:***@db/pd" in shown["POSTDESK_DATABASE_URL"]
    assert "note: POSTDESK_SMTP_PROT is set but is not a setting; it is ignored" in done.stdout


def test_settings_as_json_give_value_and_origin(tmp_path):
    done = postdesk("settings", "--json", cwd=tmp_path, POSTDESK_SMTP_PORT="2727")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["settings"]
    assert shown["POSTDESK_SMTP_PORT"] == {"value": "2727", "from": "POSTDESK_SMTP_PORT"}
    assert shown["POSTDESK_SMTP_HOST"] == {"value": "127.0.0.1", "from": "default"}


@pytest.mark.parametrize(
    "args",
    [
        ["--data-dir", "{data}", "--config", "{config}", "settings"],
        ["settings", "--data-dir", "{data}", "--config", "{config}"],
        ["--config", "{config}", "settings", "--data-dir", "{data}"],
        ["--data-dir", "wrong", "settings", "--data-dir", "{data}", "--config", "{config}"],  # nearest the verb wins
    ],
)
def test_data_dir_and_config_are_taken_before_and_after_the_verb(tmp_path, args):
    config = tmp_path / "postdesk.toml"
    config.write_text("smtp_port = 2626\n")
    done = postdesk(*[a.format(data=tmp_path / "d", config=config) for a in args], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert shown["POSTDESK_DATA_DIR"] == str(tmp_path / "d") and shown["POSTDESK_SMTP_PORT"] == "2626"


def test_data_dir_after_a_verb_of_a_group(tmp_path):
    assert postdesk("spam", "allow", "@example.com", "--data-dir", "d", cwd=tmp_path).returncode == 0
    for args in (
        ["tickets", "list", "--json", "--data-dir", "d"],
        ["tickets", "--data-dir", "d", "list", "--json"],
        ["spam", "versions", "--data-dir", "d"],
    ):
        done = postdesk(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
    assert not (tmp_path / "data").exists()
