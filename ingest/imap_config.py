"""Settings of one IMAP account Postdesk fetches from (an item of `Settings.imap_accounts`).

Certificate verification is always on: `ca_file` only replaces the system trust store.
Plain (unencrypted) IMAP is accepted only towards a loopback host.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MiB = 1024 * 1024
DEFAULT_PORTS = {"implicit": 993, "starttls": 143, "plain": 143}


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ImapAccount(BaseModel):
    """Where to fetch from, how to log in, and what to do with a message once it is spooled."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Short id of the account; names its status file.")
    host: str = Field(min_length=1, description="IMAP server host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Server port; empty means 993 for implicit TLS, else 143.")
    tls: Literal["implicit", "starttls", "plain"] = Field("implicit", description='"implicit" (IMAPS), "starttls", or "plain" (loopback hosts only).')
    username: str = Field(min_length=1, description="Login name.")
    password: SecretStr = Field(SecretStr(""), description="Login password (the login step is replaceable, for OAuth2 later).")
    ca_file: Path | None = Field(None, description="PEM file of the CA(s) to trust instead of the system store.")
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1, description="Folders to fetch from; IDLE watches the first.")
    mailbox: str = Field(description="Our address this account feeds (the envelope recipient), e.g. support@example.com.")
    after_import: Literal["keep", "move", "delete"] = Field("keep", description='"keep" (flag \\Seen), "move" (to move_to) or "delete" (our own UIDs only).')
    move_to: str | None = Field(None, description='Target folder when after_import is "move".')
    initial_sync: Literal["new", "all"] = Field("new", description='"new": only mail arriving after the first connection; "all": everything in the folders.')
    poll_interval: float = Field(60.0, gt=0, description="Seconds between polls without IDLE; with IDLE, how often the folders are synced anyway (mail reaching the IDLE folder just as IDLE begins is not announced).")
    idle: bool = Field(True, description="Use IDLE when the server offers it.")
    idle_renew: float = Field(29 * 60.0, gt=0, le=29 * 60.0, description="Seconds after which IDLE is re-issued (RFC 2177: at most 29 minutes).")
    timeout: float = Field(30.0, gt=0, description="Seconds for every socket operation (connect, read, write).")
    fetch_batch: int = Field(50, ge=1, le=1000, description="Messages fetched per UID FETCH.")
    max_message_size: int = Field(32 * MiB, ge=1024, description="Larger messages are skipped and recorded, not fetched.")
    reconnect_delay: float = Field(1.0, gt=0, description="First wait after a network failure; doubles up to reconnect_max.")
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
