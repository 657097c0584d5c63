"""The one typed settings object: `POSTDESK_*` environment variables over an optional TOML file.

Every field carries its help text; `tests/postdesk/test_settings.py` fails when the README
does not document one. Settings are passed in to whatever needs them: nothing reads them at import.
"""

from __future__ import annotations

import ipaddress
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from classifier.filter import HAM_CUTOFF, SPAM_CUTOFF
from ingest.imap_config import ImapAccount
from postdesk.settings_sources import ConfigFile, Origin, explain, json_problems, origins

MiB = 1024 * 1024


class SettingsError(Exception):
    """The configuration is invalid: one line per problem, naming the variable or the file and line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class MailboxConfig(BaseModel):
    """One address we receive mail for, the department it feeds, and its aliases."""

    address: str = Field(description="The address, e.g. support@example.com.")
    department: str = Field("Support", description="Department whose tickets this mailbox opens.")
    aliases: list[str] = Field(default_factory=list, description="Other addresses delivered to this mailbox.")

    @field_validator("address", "aliases")
    @classmethod
    def _lower_and_check(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        for item in values:
            local, at, domain = item.partition("@")
            if not at or not local or not domain or "+" in local:
                raise ValueError(f"{item!r} is not a plain address such as support@example.com")
        return [v.lower() for v in value] if isinstance(value, list) else value.lower()


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("config_file", default=None)  # `load_settings(config=...)`


def _config_file() -> Path | None:
    path = _CONFIG_FILE.get() or os.environ.get("POSTDESK_CONFIG")
    return Path(path) if path else None


class Settings(BaseSettings):
    """Postdesk's settings. Field descriptions are the documentation."""

    model_config = SettingsConfigDict(env_prefix="POSTDESK_", extra="forbid")

    data_dir: Path = Field(Path("./data"), description="Folder for the spool, blobs, the SQLite database and the spam model.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite at DATA_DIR/postdesk.db. PostgreSQL: postgresql+psycopg://user@host/db.")
    secret_key: str = Field("", description="Server secret for signing our Message-IDs; empty means one is generated once and kept in DATA_DIR/secret.key.")
    log_level: str = Field("INFO", description="Log level for Postdesk's own loggers (DEBUG, INFO, WARNING, ERROR).")

    smtp_host: str = Field("127.0.0.1", description="Address the SMTP server listens on.")
    smtp_port: int = Field(2525, ge=0, le=65535, description="Port the SMTP server listens on (0 picks a free one).")
    smtp_hostname: str = Field("postdesk.localhost", description="Name the SMTP server gives in its greeting and EHLO.")
    mailboxes: list[MailboxConfig] = Field(
        default_factory=lambda: [MailboxConfig(address="support@localhost")],
        description='Our addresses as a JSON list: [{"address": "support@example.com", "department": "Support", "aliases": ["help@example.com"]}]. Matched case-insensitively; support+tag@ reaches support@.',
    )
    max_recipients: int = Field(100, ge=1, description="Most RCPT TO per message; more get 452 4.5.3.")
    max_message_size: int = Field(32 * MiB, ge=1024, description="Largest message in bytes, advertised with SIZE; larger gets 552.")
    max_line_length: int = Field(64 * 1024, ge=1001, description="Longest line accepted in SMTP (RFC 5321 says 1000; real mail has longer).")
    tls_cert: Path | None = Field(None, description="PEM certificate for STARTTLS; STARTTLS is offered only when set, with TLS_KEY.")
    tls_key: Path | None = Field(None, description="PEM private key for STARTTLS.")
    smtp_idle_timeout: float = Field(300.0, gt=0, description="Seconds a client may stay silent between commands.")
    smtp_data_timeout: float = Field(600.0, gt=0, description="Seconds a client has to send one message body after DATA.")
    max_connections_per_ip: int = Field(20, ge=1, description="Concurrent SMTP connections per client address; more get 421.")
    min_free_disk: int = Field(256 * MiB, ge=0, description="Free bytes the spool keeps on its disk; below it, mail gets 452 4.3.1.")

    spool_max_attempts: int = Field(3, ge=1, description="Times the runner tries a spool entry before moving it to spool/bad/.")
    runner_batch_size: int = Field(50, ge=1, description="Spool entries the runner commits in one transaction.")
    runner_poll_interval: float = Field(0.2, gt=0, description="Seconds the runner waits before looking at an empty spool again.")
    runner_prepare_workers: int = Field(1, ge=0, description="Worker processes that parse and tokenize the next batch while the runner stores the current one; 0 parses in the runner itself.")
    stop_timeout: float = Field(30.0, gt=0, description="Seconds `serve` takes at most to stop after SIGTERM or Ctrl-C; a runner still busy after four fifths of them is killed (what it held goes back to the spool).")
    sqlite_busy_timeout: float = Field(30.0, gt=0, description="Seconds a SQLite writer waits for the lock before giving up.")

    reopen_window_days: int = Field(30, ge=0, description="Days after closing in which a customer reply reopens a ticket; later replies open a new linked ticket.")
    trusted_relays: list[str] = Field(default_factory=list, description="authserv-ids / hosts whose Authentication-Results and X-Spam-* headers are trusted (JSON list).")
    max_header_bytes: int = Field(256 * 1024, ge=1024, description="Header block size above which a message is flagged and parsed only from its raw bytes.")
    max_mime_parts: int = Field(500, ge=1, description="MIME parts above which a message is flagged and not split into attachments.")
    max_mime_depth: int = Field(20, ge=1, description="MIME nesting depth above which a message is flagged and not split into attachments.")
    max_header_addresses: int = Field(100, ge=1, description="Addresses read from each of From, To, Cc, Reply-To and Sender; past it the message is flagged and the rest stay in its raw mail only.")

    imap_accounts: list[ImapAccount] = Field(default_factory=list, description="IMAP accounts to fetch from, as a JSON list (see the IMAP section of the README).")

    spam_ham_cutoff: float = Field(HAM_CUTOFF, ge=0, le=1, description="Spam score at or below which a message is ham (see bench/results/spam_accuracy.md).")
    spam_spam_cutoff: float = Field(SPAM_CUTOFF, ge=0, le=1, description="Spam score at or above which a message is spam; between the cutoffs it waits in the Review queue.")
    spam_max_tokens: int = Field(5000, ge=100, description="Tokens read per message at most, so scoring time stays bounded.")
    spam_allow: list[str] = Field(default_factory=list, description="Senders (addresses or domains, JSON list) never put in Spam; `postdesk spam allow` adds more.")
    spam_block: list[str] = Field(default_factory=list, description="Senders (addresses or domains, JSON list) always put in Spam; `postdesk spam block` adds more.")

    web_host: str = Field("127.0.0.1", description="Address the agents' web view listens on.")
    web_port: int = Field(8025, ge=0, le=65535, description="Port of the web view (0 picks a free one).")
    web_tls_cert: Path | None = Field(None, description="PEM certificate for the web view; with WEB_TLS_KEY it serves HTTPS only.")
    web_tls_key: Path | None = Field(None, description="PEM private key for the web view.")
    trusted_proxies: list[str] = Field(default_factory=list, description="Reverse proxies (addresses or networks, JSON list) whose X-Forwarded-For and X-Forwarded-Proto the web view believes; from anyone else they are ignored.")
    web_session_idle_minutes: int = Field(60, ge=1, description="Minutes without a request after which an agent must sign in again.")
    web_session_max_hours: int = Field(12, ge=1, description="Hours after signing in after which an agent must sign in again, busy or not.")
    erasure_ledger: Path | None = Field(None, description="The erasure ledger (append-only; its HMAC key is kept beside it as <name>.key); empty means DATA_DIR/erasure/ledger.jsonl. Keep it on other storage than the database and never in a backup: restores replay it.")

    corpus_dir: Path = Field(Path("../shared/corpus"), description="Folder holding spamassassin-2002/{ham,spam}, for tests and benchmarks.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or a network such as 10.0.0.0/8") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.spam_ham_cutoff > self.spam_spam_cutoff:
            raise ValueError("spam_ham_cutoff must not be above spam_spam_cutoff")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be set together")
        if bool(self.web_tls_cert) != bool(self.web_tls_key):
            raise ValueError("web_tls_cert and web_tls_key must be set together")
        if not self.mailboxes:
            raise ValueError("at least one mailbox is needed")
        ours = {m.address for m in self.mailboxes}
        for account in self.imap_accounts:
            if account.mailbox not in ours:
                raise ValueError(f"IMAP account {account.name!r} feeds {account.mailbox}, which is not in mailboxes")
        names = [a.name for a in self.imap_accounts]
        if len(set(names)) != len(names):
            raise ValueError("IMAP account names must be unique")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'postdesk.db').resolve()}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spam_dir(self) -> Path:
        return self.data_dir / "spam"

    @property
    def erasure_ledger_path(self) -> Path:
        return self.erasure_ledger or self.data_dir / "erasure" / "ledger.jsonl"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from `overrides` (command-line options), the environment and the TOML file
    (`config`, else POSTDESK_CONFIG); any problem becomes a `SettingsError` with one line per problem."""
    return load_with_origins(config, **overrides)[0]


def load_with_origins(config: Path | None = None, **overrides: Any) -> tuple[Settings, dict[str, Origin]]:
    """The settings, and where each value came from (`postdesk settings` shows both)."""
    token = _CONFIG_FILE.set(config)
    try:
        path = _config_file()
        if path is not None and not path.is_file():
            raise SettingsError([f"{path}: no such settings file (named by --config or POSTDESK_CONFIG)"])
        try:
            file = ConfigFile.read(path) if path is not None else None
        except ValueError as exc:
            raise SettingsError([str(exc)]) from None
        env_source = EnvSettingsSource(Settings)
        complex_fields = [n for n, f in Settings.model_fields.items() if env_source.field_is_complex(f)]
        if problems := json_problems(complex_fields, os.environ):
            raise SettingsError(problems)
        found = origins(Settings.model_fields, overrides, os.environ, file)
        try:
            return Settings(**overrides), found
        except ValidationError as exc:
            raise SettingsError(explain(exc, found, file)) from None
        except SourceError as exc:  # a source failed in a way checked for above only in part
            raise SettingsError([str(exc)]) from None
    finally:
        _CONFIG_FILE.reset(token)
