"""Settings: typed, validated with clear errors, and every one of them documented in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.settings import Settings
from postdesk.cli import app
from postdesk.settings_loading import SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`POSTDESK_([A-Z0-9_]+)`", README.read_text()))
    missing = [name for name in Settings.model_fields if name.upper() not in documented]
    assert not missing, f"undocumented settings: {missing} (paste `postdesk settings` into the README)"


def test_every_mailbox_and_imap_account_field_is_documented():
    from models.settings import ImapAccount, MailboxConfig

    text = README.read_text()
    missing = [
        name for model in (MailboxConfig, ImapAccount) for name in model.model_fields if f"| `{name}` |" not in text
    ]
    assert not missing, f"undocumented fields: {missing} (run `postdesk settings --readme README.md`)"


def test_an_imap_account_must_feed_one_of_our_mailboxes(monkeypatch):
    account = {"name": "gmail", "host": "imap.example.com", "username": "u", "mailbox": "sales@example.com"}
    monkeypatch.setenv("POSTDESK_IMAP_ACCOUNTS", json.dumps([account]))
    with pytest.raises(SettingsError, match="not in POSTDESK_MAILBOXES"):
        load_settings()


def test_environment_and_toml_file_are_read(tmp_path, monkeypatch):
    config = tmp_path / "postdesk.toml"
    config.write_text('smtp_port = 2626\n[[mailboxes]]\naddress = "Help@Example.com"\ndepartment = "Help"\n')
    monkeypatch.setenv("POSTDESK_CONFIG", str(config))
    monkeypatch.setenv("POSTDESK_MAX_RECIPIENTS", "7")
    settings = load_settings()
    assert settings.smtp_port == 2626 and settings.max_recipients == 7
    assert settings.mailboxes[0].address == "help@example.com"


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    config = tmp_path / "postdesk.toml"
    config.write_text("smtp_port = 2626\n")
    monkeypatch.setenv("POSTDESK_CONFIG", str(config))
    monkeypatch.setenv("POSTDESK_SMTP_PORT", "2727")
    assert load_settings().smtp_port == 2727


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("POSTDESK_SMTP_PORT", "70000", "POSTDESK_SMTP_PORT: Input should be less than or equal to 65535"),
        ("POSTDESK_MAX_RECIPIENTS", "many", "POSTDESK_MAX_RECIPIENTS: Input should be a valid integer"),
        (
            "POSTDESK_MAILBOXES",
            '[{"address": "not-an-address"}]',
            r"POSTDESK_MAILBOXES\[0\]\.address: 'not-an-address' is not a plain address",
        ),
        ("POSTDESK_TLS_CERT", "/tmp/cert.pem", "POSTDESK_TLS_CERT and POSTDESK_TLS_KEY must be set together"),
        ("POSTDESK_NO_SUCH_SETTING", "1", None),
    ],
)
def test_invalid_settings_give_one_clear_error(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    if says is None:  # unknown POSTDESK_ variables are ignored by pydantic-settings; a typo in TOML is not
        load_settings()
        return
    with pytest.raises(SettingsError, match=says):
        load_settings()


def test_a_typo_in_the_config_file_is_an_error_naming_its_line(tmp_path, monkeypatch):
    config = tmp_path / "postdesk.toml"
    config.write_text("# Postdesk\nsmtp_prot = 25\n")
    monkeypatch.setenv("POSTDESK_CONFIG", str(config))
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert raised.value.problems == [f"{config}, line 2: smtp_prot: not a known setting"]


def test_a_bad_value_in_a_table_of_the_config_file_names_the_line_of_its_key(tmp_path):
    config = tmp_path / "postdesk.toml"
    config.write_text(
        'smtp_port = 2626\n\n[[mailboxes]]\naddress = "a@example.com"\n\n'
        '[[mailboxes]]\ndepartment = "Sales"\naddress = "sales"\n'
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert raised.value.problems == [
        f"{config}, line 8: mailboxes[1].address: 'sales' is not a plain address such as support@example.com"
    ]


def test_the_cli_reports_bad_settings_without_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTDESK_SMTP_PORT", "-1")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "status"])
    assert result.exit_code == 2
    assert "POSTDESK_SMTP_PORT" in result.output and "Traceback" not in result.output
