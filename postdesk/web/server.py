"""The web view under uvicorn, in a thread with its own event loop, beside the SMTP server in
`postdesk serve` or alone in `postdesk web`. HTTPS when the web's own certificate and key are set.

uvicorn's own X-Forwarded-* handling is off (it trusts 127.0.0.1 by default): the app reads them
itself, from POSTDESK_TRUSTED_PROXIES only. Its access log is off too: URLs carry search words,
and logs hold no personal data.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from collections.abc import Callable

import uvicorn

from models.base import utcnow
from models.db import Database
from models.settings import Settings
from postdesk.web.app import create_app

log = logging.getLogger("postdesk.web")


class WebServer:
    def __init__(self, settings: Settings, db: Database, now: Callable[[], datetime] = utcnow):
        self.settings = settings
        tls = settings.web_tls_cert is not None
        config = uvicorn.Config(
            create_app(settings, db, now),
            host=settings.web_host,
            port=settings.web_port,
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(settings.web_tls_cert) if tls else None,
            ssl_keyfile=str(settings.web_tls_key) if tls else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="postdesk-web", daemon=True)
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Listen; returns the URL. Raises OSError when the address cannot be had."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise OSError(f"the web view cannot listen on {self.settings.web_host}:{self.settings.web_port}")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.settings.web_tls_cert else "http"
        host = self.settings.web_host if ":" not in self.settings.web_host else f"[{self.settings.web_host}]"
        self.url = f"{scheme}://{host}:{port}/"
        log.info("web view at %s", self.url)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=30)
