"""The admins' spam filter page and its actions: retrain (a background job the page follows),
activate a version (a rollback is activating an older one), and the allow and block lists.
Anyone else gets the 404 every other admin page gives. Each action writes an audit record."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from classifier import senders, versions
from postdesk.web import spam_page
from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.nav import nav
from postdesk.web.retrain_job import Busy
from postdesk.web.site import site_of
from postdesk.web.spam_desk import actor, spam_desk
from retention.audit import record

router = APIRouter()
PAGE = "/admin/spam"
ACTIONS = {"allow": "allow", "block": "block"}
NOTICES = {
    "activated": "Version {} is active.",
    "added": "The rule is saved.",
    "removed": "The rule is removed.",
    "absent": "That rule was not listed.",
}


def admin(me: Viewer = Depends(viewer)) -> Viewer:
    """Dependency of the admins' pages: anyone else is told there is nothing here."""
    if not me.is_admin:
        raise HTTPException(404)
    return me


def _page(request: Request, me: Viewer, status: int = 200, **extra):
    site = site_of(request)
    job = spam_desk(request).retrainer.seen()  # before the read: a job seen done has its version committed
    with site.db.read() as session:
        context = nav(session, me) | spam_page.context(session, site.settings)
    done = request.query_params.get("done", "")
    notice = NOTICES.get(done, "").format(request.query_params.get("version", ""))
    response = site.render(request, "spam_admin.html", status, **context, job=job, notice=notice, **extra)
    if job is not None and job.running:
        # Follows the job without a script. No fragment: Chromium takes a refresh to the same URL with one
        # for a jump within the page, and does not reload.
        response.headers["Refresh"] = f"2; url={PAGE}"
    return response


@router.get(PAGE)
def spam_admin_page(request: Request, me: Viewer = Depends(admin)):
    return _page(request, me)


@router.post(PAGE + "/retrain")
def retrain(request: Request, note: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(admin)):
    check_csrf(csrf, me.csrf)
    note = note.strip()[:200] or "retrain from the web view"
    try:
        spam_desk(request).retrainer.start(actor(me.agent_id), note)
    except Busy:
        return _page(request, me, 409, error="A retrain is running already; this page follows it.")
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/versions/{version_id}/activate")
def activate(version_id: int, request: Request, csrf: str = Form(""), me: Viewer = Depends(admin)):
    check_csrf(csrf, me.csrf)
    try:
        with site_of(request).db.write() as session:
            versions.activate_version(session, version_id)
            record(session, actor(me.agent_id), "spam-activate", "", {"version": version_id})
    except LookupError:
        raise HTTPException(404) from None
    return RedirectResponse(f"{PAGE}?done=activated&version={version_id}", status_code=303)


@router.post(PAGE + "/rules")
def add_rule(
    request: Request, pattern: str = Form(""), action: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(admin)
):
    check_csrf(csrf, me.csrf)
    if action not in ACTIONS:
        return _page(request, me, 400, error="Choose allow or block.", pattern=pattern[:320])
    try:
        normalised = senders.normalise(pattern[:400])
    except ValueError:
        return _page(
            request,
            me,
            400,
            pattern=pattern[:320],
            error="Give an address (name@example.com) or a domain (example.com), without spaces.",
        )
    desk = spam_desk(request)
    with site_of(request).db.write() as session:
        senders.set_rule(session, normalised, ACTIONS[action])
        _audit(session, desk, me, f"spam-{ACTIONS[action]}", normalised)
    return RedirectResponse(PAGE + "?done=added#rules", status_code=303)


@router.post(PAGE + "/rules/remove")
def remove_rule(request: Request, pattern: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(admin)):
    check_csrf(csrf, me.csrf)
    desk = spam_desk(request)
    try:
        with site_of(request).db.write() as session:
            removed = senders.remove_rule(session, pattern[:400])
            if removed:
                _audit(session, desk, me, "spam-rule-removed", senders.normalise(pattern[:400]))
    except ValueError:
        return _page(request, me, 400, error="That is not a rule's address or domain.")
    return RedirectResponse(PAGE + f"?done={'removed' if removed else 'absent'}#rules", status_code=303)


def _audit(session, desk, me: Viewer, action: str, pattern: str) -> None:
    """The rule's address or domain as its keyed hash (the erasure ledger's key), never in clear."""
    kind = "address" if "@" in pattern else "domain"
    record(session, actor(me.agent_id), action, desk.erasure_ledger.hmac(pattern), {"kind": kind})
