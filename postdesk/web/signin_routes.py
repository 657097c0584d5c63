"""Signing in and out: password, second factor, a new password after a one-time one, enrolment."""

from __future__ import annotations

import math

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from models import Agent
from postdesk.accounts import sessions, signin, totp
from postdesk.web.auth import STEP_PAGES, SignInNeeded, at_step, check_csrf, session_viewer
from postdesk.web.site import FORM_COOKIE, SESSION_COOKIE, site_of

router = APIRouter()


def _go(step: str) -> RedirectResponse:
    return RedirectResponse(STEP_PAGES[step], status_code=303)


def _to_step(request: Request, token: str, step: str) -> RedirectResponse:
    """On to the page of `step`, with the new session's cookie."""
    response = _go(step)
    site_of(request).set_session(response, request, token)
    return response


def _refused(attempt: signin.Attempt, wrong: str, page) -> Response:
    """The form again: 429 with Retry-After when throttled (nothing was checked), else 401."""
    if not attempt.wait:
        return page(401, wrong)
    response = page(429, f"Too many failed attempts. Try again in {math.ceil(attempt.wait)} seconds.")
    response.headers["Retry-After"] = str(math.ceil(attempt.wait))
    return response


@router.get("/signin")
def signin_page(request: Request):
    site = site_of(request)
    found = session_viewer(site, request.cookies.get(SESSION_COOKIE))
    if found is not None:
        return _go(found.stage)
    return site.signed_out_form(request, "signin.html")


@router.post("/signin")
def signin_submit(request: Request, email: str = Form(""), password: str = Form(""), csrf: str = Form("")):
    site = site_of(request)
    check_csrf(csrf, request.cookies.get(FORM_COOKIE))
    now, address = site.now(), site.address(request)
    with site.db.write() as session:
        attempt = signin.check_password(session, email, password, address, now)
        if attempt.ok:
            sessions.end(session, request.cookies.get(SESSION_COOKIE))
            agent = session.get_one(Agent, attempt.agent_id)
            step = signin.next_step(session, agent, "password")
            token, _ = sessions.start(session, agent.id, step, now)
    if not attempt.ok:
        return _refused(
            attempt,
            "Wrong email or password.",
            lambda status, error: site.signed_out_form(request, "signin.html", status, error=error, email=email),
        )
    return _to_step(request, token, step)


def _advance(request: Request, done: str) -> tuple[str, str]:
    """End this step's session and start the next step's, with a new session id."""
    site = site_of(request)
    now = site.now()
    with site.db.write() as session:
        row = sessions.find(session, request.cookies.get(SESSION_COOKIE), now, site.limits)
        if row is None:  # it ended since this request's step was checked
            raise SignInNeeded()
        agent = session.get_one(Agent, row.agent_id)
        step = signin.next_step(session, agent, done)
        token, _ = sessions.advance(session, row, step, now)
    return token, step


@router.get("/signin/code")
def code_page(request: Request):
    me = at_step(request, "second_factor")
    return site_of(request).render(request, "signin_code.html", csrf=me.csrf)


@router.post("/signin/code")
def code_submit(request: Request, code: str = Form(""), csrf: str = Form("")):
    me = at_step(request, "second_factor")
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    with site.db.write() as session:
        attempt = signin.check_second_factor(
            session, session.get_one(Agent, me.agent_id), code, site.address(request), site.now()
        )
    if not attempt.ok:
        return _refused(
            attempt,
            "That code is not right.",
            lambda status, error: site.render(request, "signin_code.html", status, error=error, csrf=me.csrf),
        )
    return _to_step(request, *_advance(request, "second_factor"))


@router.get("/signin/password")
def password_page(request: Request):
    me = at_step(request, "new_password")
    return site_of(request).render(request, "signin_password.html", csrf=me.csrf)


@router.post("/signin/password")
def password_submit(request: Request, new: str = Form(""), repeat: str = Form(""), csrf: str = Form("")):
    me = at_step(request, "new_password")
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    with site.db.write() as session:
        why = signin.set_password(session.get_one(Agent, me.agent_id), new, repeat)
    if why:
        return site.render(request, "signin_password.html", 400, error=why[0].upper() + why[1:] + ".", csrf=me.csrf)
    return _to_step(request, *_advance(request, "new_password"))


def enrolment_context(site, agent_id: int) -> dict:
    with site.db.write() as session:
        agent = session.get_one(Agent, agent_id)
        secret = signin.enrolment_secret(agent)
        uri = totp.provisioning_uri(secret, agent.email)
    return {"qr": totp.qr_svg(uri), "secret": secret}


@router.get("/signin/enrol")
def enrol_page(request: Request):
    me = at_step(request, "enrol")
    site = site_of(request)
    return site.render(
        request, "enrol.html", csrf=me.csrf, action="/signin/enrol", **enrolment_context(site, me.agent_id)
    )


def confirm_enrolment(request: Request, me, code: str, action: str) -> list[str] | Response:
    """The new recovery codes once the first TOTP code is right; else the enrolment page again (400)."""
    site = site_of(request)
    with site.db.write() as session:
        codes = signin.confirm_enrolment(session, session.get_one(Agent, me.agent_id), code, site.now())
    if codes is None:
        return site.render(
            request,
            "enrol.html",
            400,
            error="That code is not right; try the next one.",
            csrf=me.csrf,
            action=action,
            **enrolment_context(site, me.agent_id),
        )
    return codes


@router.post("/signin/enrol")
def enrol_submit(request: Request, code: str = Form(""), csrf: str = Form("")):
    me = at_step(request, "enrol")
    check_csrf(csrf, me.csrf)
    codes = confirm_enrolment(request, me, code, "/signin/enrol")
    if not isinstance(codes, list):
        return codes
    site = site_of(request)
    token, _ = _advance(request, "enrol")
    response = site.render(request, "recovery_codes.html", codes=codes)
    site.set_session(response, request, token)
    return response


@router.post("/signout")
def signout(request: Request, csrf: str = Form("")):
    site = site_of(request)
    found = session_viewer(site, request.cookies.get(SESSION_COOKIE))
    if found is not None:
        check_csrf(csrf, found.csrf)
        with site.db.write() as session:
            sessions.end(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    site.clear_session(response, request)
    return response
