"""What every route shares: the settings, the database, the clock, the templates and the cookies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from pathlib import Path
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from models.blobstore import BlobStore
from models.db import Database
from models.settings import Settings
from postdesk.accounts import sessions
from postdesk.web import client

SESSION_COOKIE = "postdesk_session"
FORM_COOKIE = "postdesk_form"  # the signed-out forms' CSRF token (double submit)
HERE = Path(__file__).parent


@dataclass
class Site:
    settings: Settings
    db: Database
    now: Callable[[], datetime]
    blobs: BlobStore
    templates: Environment
    trusted: tuple[client.Network, ...]

    @classmethod
    def build(cls, settings: Settings, db: Database, now: Callable[[], datetime]) -> Site:
        templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        templates.filters["when"] = _when
        return cls(
            settings, db, now, BlobStore(settings.blob_dir), templates, client.networks(settings.trusted_proxies)
        )

    @property
    def limits(self) -> sessions.Limits:
        s = self.settings
        return sessions.Limits(timedelta(minutes=s.web_session_idle_minutes), timedelta(hours=s.web_session_max_hours))

    def address(self, request: Request) -> str:
        return client.client_address(
            request.client.host if request.client else None, request.headers.get("x-forwarded-for"), self.trusted
        )

    def https(self, request: Request) -> bool:
        return client.is_https(
            request.url.scheme,
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-proto"),
            self.trusted,
        )

    def render(self, request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        html = self.templates.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status_code=status)

    def set_session(self, response, request: Request, token: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=self.https(request), path="/")

    def clear_session(self, response, request: Request) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=self.https(request), path="/")

    def signed_out_form(self, request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        """A form shown before signing in, with its CSRF token both in a cookie and in the form."""
        token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)
        response = self.render(request, template, status, csrf=token, **context)
        response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="lax", secure=self.https(request), path="/")
        return response


def site_of(request: Request) -> Site:
    return request.app.state.site


def _when(moment: datetime | str | None) -> str:
    """A time as agents read it (stored times are UTC; the queries hand some back as ISO text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
