"""The one typed settings schema: `POSTDESK_*` environment variables over an optional TOML file.

Every field carries its help text; `tests/postdesk/test_settings.py` fails when the README
does not document one. Settings are passed in to whatever needs them: nothing reads them at import.
Loading them, with errors told in the user's terms, is `postdesk.settings_loading`' job.
"""

from __future__ import annotations

import ipaddress
import os
from contextvars import ContextVar
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MiB = 1024 * 1024
DEFAULT_PORTS = {"implicit": 993, "starttls": 143, "plain": 143}
# The spam filter's cutoffs; classifier/filter.py says why these (bench/results/spam_accuracy.md).
HAM_CUTOFF = 0.20
SPAM_CUTOFF = 0.95


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ImapAccount(BaseModel):
    """One IMAP account Postdesk fetches from (an item of `Settings.imap_accounts`): where to fetch
    from, how to log in, and what to do with a message once it is spooled.

    Certificate verification is always on: `ca_file` only replaces the system trust store.
    Plain (unencrypted) IMAP is accepted only towards a loopback host.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Short id of the account; names its status file."
    )
    host: str = Field(min_length=1, description="IMAP server host name or address.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Server port; empty means 993 for implicit TLS, else 143."
    )
    tls: Literal["implicit", "starttls", "plain"] = Field(
        "implicit", description='"implicit" (IMAPS), "starttls", or "plain" (loopback hosts only).'
    )
    username: str = Field(min_length=1, description="Login name.")
    password: SecretStr = Field(
        SecretStr(""), description="Login password (the login step is replaceable, for OAuth2 later)."
    )
    ca_file: Path | None = Field(None, description="PEM file of the CA(s) to trust instead of the system store.")
    folders: list[str] = Field(
        default_factory=lambda: ["INBOX"], min_length=1, description="Folders to fetch from; IDLE watches the first."
    )
    mailbox: str = Field(
        description="Our address this account feeds (the envelope recipient), e.g. support@example.com."
    )
    after_import: Literal["keep", "move", "delete"] = Field(
        "keep", description='"keep" (flag \\Seen), "move" (to move_to) or "delete" (our own UIDs only).'
    )
    move_to: str | None = Field(None, description='Target folder when after_import is "move".')
    initial_sync: Literal["new", "all"] = Field(
        "new", description='"new": only mail arriving after the first connection; "all": everything in the folders.'
    )
    poll_interval: float = Field(
        60.0,
        gt=0,
        description=(
            "Seconds between polls without IDLE; with IDLE, how often the folders are synced anyway (mail reaching "
            "the IDLE folder just as IDLE begins is not announced)."
        ),
    )
    idle: bool = Field(True, description="Use IDLE when the server offers it.")
    idle_renew: float = Field(
        29 * 60.0,
        gt=0,
        le=29 * 60.0,
        description="Seconds after which IDLE is re-issued (RFC 2177: at most 29 minutes).",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds for every socket operation (connect, read, write).")
    fetch_batch: int = Field(50, ge=1, le=1000, description="Messages fetched per UID FETCH.")
    max_message_size: int = Field(
        32 * MiB, ge=1024, description="Larger messages are skipped and recorded, not fetched."
    )
    reconnect_delay: float = Field(
        1.0, gt=0, description="First wait after a network failure; doubles up to reconnect_max."
    )
    reconnect_max: float = Field(300.0, gt=0, description="Longest wait between reconnection attempts.")
    login_retry: float = Field(900.0, gt=0, description="Wait after a rejected login before trying again.")

    @field_validator("mailbox")
    @classmethod
    def _plain_address(cls, value: str) -> str:
        local, at, domain = value.partition("@")
        if not at or not local or not domain:
            raise ValueError(f"{value!r} is not an address such as support@example.com")
        return value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> ImapAccount:
        if self.tls == "plain" and not is_loopback(self.host):
            raise ValueError('tls "plain" is allowed only for a loopback host; use "implicit" or "starttls"')
        if self.after_import == "move" and not self.move_to:
            raise ValueError('after_import "move" needs move_to')
        if self.move_to and self.move_to in self.folders:
            raise ValueError("move_to must not be one of the watched folders")
        if len(set(self.folders)) != len(self.folders):
            raise ValueError("folders are listed twice")
        return self

    @property
    def server_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.tls]


class MailboxConfig(BaseModel):
    """One address we receive mail for, the department it feeds, and its aliases."""

    address: str = Field(description="The address, e.g. support@example.com.")
    department: str = Field("Support", description="Department whose tickets this mailbox opens.")
    aliases: list[str] = Field(default_factory=list, description="Other addresses delivered to this mailbox.")
    acknowledgement: str = Field(
        "",
        description=(
            "Text of the auto-acknowledgement a new ticket's sender gets ({ticket} and {subject} are filled in); "
            "empty: none. Never sent to automatic mail, bounces, lists, spam or unsure mail."
        ),
    )
    acknowledgement_subject: str = Field(
        "Re: {subject} [#{ticket}]", description="Subject of the auto-acknowledgement."
    )

    @field_validator("address", "aliases")
    @classmethod
    def _lower_and_check(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        for item in values:
            local, at, domain = item.partition("@")
            if not at or not local or not domain or "+" in local:
                raise ValueError(f"{item!r} is not a plain address such as support@example.com")
        return [v.lower() for v in value] if isinstance(value, list) else value.lower()


CONFIG_FILE: ContextVar[Path | None] = ContextVar("config_file", default=None)  # `load_settings(config=...)`


def config_file() -> Path | None:
    """The TOML file of this load: the one `load_settings` was given, else POSTDESK_CONFIG."""
    path = CONFIG_FILE.get() or os.environ.get("POSTDESK_CONFIG")
    return Path(path) if path else None


class Settings(BaseSettings):
    """Postdesk's settings. Field descriptions are the documentation."""

    model_config = SettingsConfigDict(env_prefix="POSTDESK_", extra="forbid")

    data_dir: Path = Field(
        Path("./data"), description="Folder for the spool, blobs, the SQLite database and the spam model."
    )
    database_url: str = Field(
        "",
        description=(
            "SQLAlchemy URL; empty means SQLite at DATA_DIR/postdesk.db. PostgreSQL: postgresql+psycopg://user@host/db."
        ),
    )
    secret_key: str = Field(
        "",
        description=(
            "Server secret for signing our Message-IDs; empty means one is generated once and kept in "
            "DATA_DIR/secret.key."
        ),
    )
    log_level: str = Field("INFO", description="Log level for Postdesk's own loggers (DEBUG, INFO, WARNING, ERROR).")

    smtp_host: str = Field("127.0.0.1", description="Address the SMTP server listens on.")
    smtp_port: int = Field(2525, ge=0, le=65535, description="Port the SMTP server listens on (0 picks a free one).")
    smtp_hostname: str = Field("postdesk.localhost", description="Name the SMTP server gives in its greeting and EHLO.")
    mailboxes: list[MailboxConfig] = Field(
        default_factory=lambda: [MailboxConfig(address="support@localhost")],
        description=(
            'Our addresses as a JSON list: [{"address": "support@example.com", "department": "Support", '
            '"aliases": ["help@example.com"]}]. Matched case-insensitively; support+tag@ reaches support@.'
        ),
    )
    max_recipients: int = Field(100, ge=1, description="Most RCPT TO per message; more get 452 4.5.3.")
    max_message_size: int = Field(
        32 * MiB, ge=1024, description="Largest message in bytes, advertised with SIZE; larger gets 552."
    )
    max_line_length: int = Field(
        64 * 1024, ge=1001, description="Longest line accepted in SMTP (RFC 5321 says 1000; real mail has longer)."
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate for STARTTLS; STARTTLS is offered only when set, with TLS_KEY."
    )
    tls_key: Path | None = Field(None, description="PEM private key for STARTTLS.")
    smtp_idle_timeout: float = Field(300.0, gt=0, description="Seconds a client may stay silent between commands.")
    smtp_data_timeout: float = Field(
        600.0, gt=0, description="Seconds a client has to send one message body after DATA."
    )
    max_connections_per_ip: int = Field(
        20, ge=1, description="Concurrent SMTP connections per client address; more get 421."
    )
    min_free_disk: int = Field(
        256 * MiB, ge=0, description="Free bytes the spool keeps on its disk; below it, mail gets 452 4.3.1."
    )

    spool_max_attempts: int = Field(
        3, ge=1, description="Times the runner tries a spool entry before moving it to spool/bad/."
    )
    runner_batch_size: int = Field(50, ge=1, description="Spool entries the runner commits in one transaction.")
    runner_poll_interval: float = Field(
        0.2, gt=0, description="Seconds the runner waits before looking at an empty spool again."
    )
    runner_prepare_workers: int = Field(
        1,
        ge=0,
        description=(
            "Worker processes that parse and tokenize the next batch while the runner stores the current one; 0 "
            "parses in the runner itself."
        ),
    )
    stop_timeout: float = Field(
        30.0,
        gt=0,
        description=(
            "Seconds `serve` takes at most to stop after SIGTERM or Ctrl-C; a runner still busy after four fifths of "
            "them is killed (what it held goes back to the spool)."
        ),
    )
    sqlite_busy_timeout: float = Field(
        30.0, gt=0, description="Seconds a SQLite writer waits for the lock before giving up."
    )

    reopen_window_days: int = Field(
        30,
        ge=0,
        description=(
            "Days after closing in which a customer reply reopens a ticket; later replies open a new linked ticket."
        ),
    )
    trusted_relays: list[str] = Field(
        default_factory=list,
        description="authserv-ids / hosts whose Authentication-Results and X-Spam-* headers are trusted (JSON list).",
    )
    max_header_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="Header block size above which a message is flagged and parsed only from its raw bytes.",
    )
    max_mime_parts: int = Field(
        500, ge=1, description="MIME parts above which a message is flagged and not split into attachments."
    )
    max_mime_depth: int = Field(
        20, ge=1, description="MIME nesting depth above which a message is flagged and not split into attachments."
    )
    max_header_addresses: int = Field(
        100,
        ge=1,
        description=(
            "Addresses read from each of From, To, Cc, Reply-To and Sender; past it the message is flagged and the "
            "rest stay in its raw mail only."
        ),
    )

    imap_accounts: list[ImapAccount] = Field(
        default_factory=list,
        description="IMAP accounts to fetch from, as a JSON list (see the IMAP section of the README).",
    )

    spam_ham_cutoff: float = Field(
        HAM_CUTOFF,
        ge=0,
        le=1,
        description="Spam score at or below which a message is ham (see bench/results/spam_accuracy.md).",
    )
    spam_spam_cutoff: float = Field(
        SPAM_CUTOFF,
        ge=0,
        le=1,
        description="Spam score at or above which a message is spam; between the cutoffs it waits in the Review queue.",
    )
    spam_max_tokens: int = Field(
        5000, ge=100, description="Tokens read per message at most, so scoring time stays bounded."
    )
    spam_allow: list[str] = Field(
        default_factory=list,
        description="Senders (addresses or domains, JSON list) never put in Spam; `postdesk spam allow` adds more.",
    )
    spam_block: list[str] = Field(
        default_factory=list,
        description="Senders (addresses or domains, JSON list) always put in Spam; `postdesk spam block` adds more.",
    )

    web_host: str = Field("127.0.0.1", description="Address the agents' web view listens on.")
    web_port: int = Field(8025, ge=0, le=65535, description="Port of the web view (0 picks a free one).")
    web_tls_cert: Path | None = Field(
        None, description="PEM certificate for the web view; with WEB_TLS_KEY it serves HTTPS only."
    )
    web_tls_key: Path | None = Field(None, description="PEM private key for the web view.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Reverse proxies (addresses or networks, JSON list) whose X-Forwarded-For and X-Forwarded-Proto the web "
            "view believes; from anyone else they are ignored."
        ),
    )
    web_session_idle_minutes: int = Field(
        60, ge=1, description="Minutes without a request after which an agent must sign in again."
    )
    web_session_max_hours: int = Field(
        12, ge=1, description="Hours after signing in after which an agent must sign in again, busy or not."
    )
    web_public_url: str = Field(
        "",
        description=(
            "The web view's address as agents reach it, for the links in notifications; empty means "
            "http://WEB_HOST:WEB_PORT/."
        ),
    )

    relay_host: str = Field(
        "",
        description=(
            "Outbound SMTP relay that replies, forwards, acknowledgements and notifications go through; empty: they "
            "wait in the outbox."
        ),
    )
    relay_port: int = Field(587, ge=1, le=65535, description="Port of the outbound relay.")
    relay_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls, tls (implicit, usually port 465) or none (loopback relays only)."
    )
    relay_username: str = Field("", description="Login at the relay; empty: no authentication.")
    relay_password: str = Field("", description="Password at the relay.")
    relay_ca_file: Path | None = Field(
        None, description="PEM file of the CA(s) to trust for the relay instead of the system store."
    )
    relay_timeout: float = Field(60.0, gt=0, description="Seconds for each exchange with the relay.")
    outbox_retry_seconds: float = Field(
        60.0,
        gt=0,
        description="Wait before the first retry of a failed delivery; it doubles with each attempt, up to an hour.",
    )
    outbox_max_attempts: int = Field(
        12, ge=1, description="Attempts before a delivery is marked failed (an agent can try again from the ticket)."
    )
    outbox_poll_interval: float = Field(1.0, gt=0, description="Seconds between looks at the outbox for mail to send.")
    acknowledgement_daily_cap: int = Field(
        3, ge=0, description="Auto-acknowledgements one sender gets in 24 hours at most."
    )
    erasure_ledger: Path | None = Field(
        None,
        description=(
            "The erasure ledger (append-only; its HMAC key is kept beside it as <name>.key); empty means "
            "DATA_DIR/erasure/ledger.jsonl. Keep it on other storage than the database and never in a backup: "
            "restores replay it."
        ),
    )

    retention_at: str = Field(
        "03:30",
        description=(
            "UTC time of day (HH:MM or HH:MM:SS) at which `serve` runs the retention rules and the blob sweep; empty: "
            "never (`postdesk retention run` still does)."
        ),
    )
    retention_misfire_grace: float = Field(
        3600.0,
        gt=0,
        description=(
            "Seconds after its time a daily run missed (serve busy or stopped) still starts; later ones wait for the "
            "next day."
        ),
    )
    retention_spam_days: int = Field(
        30, ge=0, description="Days a ticket in Spam is kept after its last activity, then purged; 0 keeps it."
    )
    retention_automatic_days: int = Field(
        30,
        ge=0,
        description=(
            "Days a ticket in Automatic (bounces, auto-replies that matched no ticket) is kept after its last "
            "activity; 0 keeps it."
        ),
    )
    retention_trash_days: int = Field(
        30, ge=0, description="Days a ticket stays in the Trash before it is purged; 0 keeps it."
    )
    retention_closed_days: int = Field(
        0,
        ge=0,
        description=(
            "Days after closing a ticket is deleted or anonymised (RETENTION_CLOSED_MODE); 0 (the default) keeps it."
        ),
    )
    retention_closed_mode: Literal["delete", "anonymise"] = Field(
        "delete",
        description=(
            "What RETENTION_CLOSED_DAYS does to a closed ticket: delete, or anonymise (an empty shell with its "
            "status, queue, department and dates stays for reporting)."
        ),
    )
    retention_attachment_days: int = Field(
        0,
        ge=0,
        description=(
            "Days after which attachments are removed while their messages stay (a placeholder says when); 0 (the "
            "default) keeps them."
        ),
    )
    retention_raw_mail_days: int = Field(
        0,
        ge=0,
        description=(
            "Days the raw bytes of each message are kept (the message stays; an export then lacks its .eml); 0 (the "
            "default) keeps them."
        ),
    )
    retention_contacts: bool = Field(True, description="Remove contacts no ticket or message points at any more.")
    backup_dir: Path | None = Field(
        None,
        description=(
            "Folder `postdesk backup create` writes to and `backup list` reads; empty means DATA_DIR/backups. Better "
            "on other storage than the data folder."
        ),
    )
    backup_keep_days: int = Field(
        30,
        ge=0,
        description=(
            "Days a backup in BACKUP_DIR is kept; older ones are deleted by the daily retention run (0 keeps them all)."
        ),
    )

    corpus_dir: Path = Field(
        Path("../shared/corpus"), description="Folder holding spamassassin-2002/{ham,spam}, for tests and benchmarks."
    )

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
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("retention_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        try:
            if value:
                time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day such as 03:30 or 03:30:15 (UTC)") from None
        return value

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
        if self.relay_host and self.relay_security == "none" and not is_loopback(self.relay_host):
            raise ValueError("relay_security none is for a relay on this machine only (127.0.0.1, ::1, localhost)")
        names = [a.name for a in self.imap_accounts]
        if len(set(names)) != len(names):
            raise ValueError("IMAP account names must be unique")
        return self

    @property
    def web_url(self) -> str:
        if self.web_public_url:
            return self.web_public_url.rstrip("/") + "/"
        host = self.web_host if ":" not in self.web_host else f"[{self.web_host}]"
        return f"{'https' if self.web_tls_cert else 'http'}://{host}:{self.web_port}/"

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

    @property
    def backup_folder(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"
