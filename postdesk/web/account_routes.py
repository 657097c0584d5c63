"""An agent's own account (password, second factor, recovery codes) and the admins' 2FA policy page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from models import Agent
from models.agent import ROLES
from postdesk.accounts import passwords, recovery, signin, users
from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.signin_routes import confirm_enrolment, enrolment_context
from postdesk.web.site import site_of
from postdesk.web.nav import nav

router = APIRouter()


def _account(request: Request, me: Viewer, status: int = 200, **extra):
    site = site_of(request)
    with site.db.read() as session:
        agent = session.get_one(Agent, me.agent_id)
        context = nav(session, me) | {
            "enrolled": agent.totp_secret is not None,
            "codes_left": recovery.left(session, me.agent_id),
        }
    return site.render(request, "account.html", status, **context, **extra)


@router.get("/account")
def account_page(request: Request, me: Viewer = Depends(viewer)):
    return _account(request, me)


@router.post("/account/password")
def change_password(
    request: Request,
    current: str = Form(""),
    new: str = Form(""),
    repeat: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    with site.db.write() as session:
        agent = session.get_one(Agent, me.agent_id)
        why = (
            "the current password is not right"
            if not passwords.verify(agent.password_hash, current)
            else signin.set_password(agent, new, repeat)
        )
    if why:
        return _account(request, me, 400, error=why[0].upper() + why[1:] + ".")
    return _account(request, me, notice="Your password is changed.")


@router.get("/account/enrol")
def enrol_page(request: Request, me: Viewer = Depends(viewer)):
    site = site_of(request)
    with site.db.read() as session:
        if session.get_one(Agent, me.agent_id).totp_secret is not None:
            return RedirectResponse("/account", status_code=303)
        context = nav(session, me)
    return site.render(
        request, "enrol.html", **context, csrf=me.csrf, action="/account/enrol", **enrolment_context(site, me.agent_id)
    )


@router.post("/account/enrol")
def enrol_submit(request: Request, code: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)):
    check_csrf(csrf, me.csrf)
    codes = confirm_enrolment(request, me, code, "/account/enrol")
    if not isinstance(codes, list):
        return codes
    return site_of(request).render(request, "recovery_codes.html", codes=codes)


@router.post("/account/recovery-codes")
def new_recovery_codes(request: Request, csrf: str = Form(""), me: Viewer = Depends(viewer)):
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    with site.db.write() as session:
        codes = recovery.replace_codes(session, me.agent_id)
    return site.render(request, "recovery_codes.html", codes=codes)


def _admin(me: Viewer) -> None:
    if not me.is_admin:
        raise HTTPException(404)


@router.get("/admin/security")
def security_page(request: Request, me: Viewer = Depends(viewer)):
    _admin(me)
    site = site_of(request)
    with site.db.read() as session:
        context = nav(session, me) | {"policies": users.policies(session)}
    return site.render(request, "security.html", **context, notice=request.query_params.get("saved") and "Saved.")


@router.post("/admin/security")
def security_submit(
    request: Request,
    require_owner: str = Form(""),
    require_admin: str = Form(""),
    require_agent: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    _admin(me)
    check_csrf(csrf, me.csrf)
    wanted = {"owner": require_owner, "admin": require_admin, "agent": require_agent}
    with site_of(request).db.write() as session:
        for role in ROLES:
            users.set_2fa_required(session, role, wanted[role] == "on")
    return RedirectResponse("/admin/security?saved=1", status_code=303)
