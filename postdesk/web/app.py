"""`create_app`: the FastAPI application of the web view, with its security headers and error pages."""

from __future__ import annotations

from datetime import datetime
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.base import utcnow
from models.db import Database
from models.settings import Settings
from postdesk.web import (
    account_routes,
    notification_routes,
    reply_routes,
    search_routes,
    signin_routes,
    spam_admin_routes,
    spam_routes,
    ticket_routes,
    work_routes,
)
from postdesk.web.auth import STEP_PAGES, FormExpired, SignInNeeded, StepNeeded
from postdesk.web.site import HERE, Site, site_of

# Scripts, styles and images from us only (the keyboard shortcuts and presence checks, static/keys.js;
# no inline script); framed only by ourselves (the message bodies bring their own, stricter policy).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """Adds the page policy and the usual hardening headers to every response that has not set its own."""

    def __init__(self, app, site: Site):
        self.app, self.site = app, site

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        https = scope.get("scheme") == "https"
        cache = "public, max-age=3600" if scope["path"].startswith("/static/") else "no-store"

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = dict(_COMMON)
                extra.setdefault("content-security-policy", PAGE_POLICY)
                extra.setdefault("x-frame-options", "DENY")
                extra.setdefault("cache-control", cache)
                if https:
                    extra["strict-transport-security"] = "max-age=31536000"
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings, db: Database, now: Callable[[], datetime] = utcnow) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = Site.build(settings, db, now)
    for module in (
        signin_routes,
        ticket_routes,
        search_routes,
        account_routes,
        work_routes,
        spam_routes,
        spam_admin_routes,
    ):
        app.include_router(module.router)
    for module in (reply_routes, notification_routes):
        module.install(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders, site=app.state.site)

    @app.exception_handler(SignInNeeded)
    def _sign_in(request: Request, _exc):
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(StepNeeded)
    def _step(request: Request, exc: StepNeeded):
        return RedirectResponse(STEP_PAGES[exc.step], status_code=303)

    @app.exception_handler(FormExpired)
    def _expired(request: Request, _exc):
        return site_of(request).render(
            request, "error.html", 403, title="This form has expired", text="Reload the page and try again."
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: HTTPException):
        texts = {
            404: ("Not found", "There is nothing here, or it is not yours to see."),
            405: ("Not allowed", "That address does not take this kind of request."),
        }
        title, text = texts.get(exc.status_code, ("Something went wrong", str(exc.detail)))
        return site_of(request).render(request, "error.html", exc.status_code, title=title, text=text)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, _exc):
        return site_of(request).render(
            request, "error.html", 404, title="Not found", text="There is nothing here, or it is not yours to see."
        )

    return app
