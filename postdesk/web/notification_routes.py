"""An agent's choice of notifications (new tickets in their departments, tickets assigned to them),
shown on the account page through the template function `notification_choice`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse

from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.site import site_of
from tickets import notify

router = APIRouter()


def install(app: FastAPI) -> None:
    app.state.site.templates.globals.update(notification_choice=_choice)
    app.include_router(router)


def _choice(request: Request, agent_id: int):
    with site_of(request).db.read() as session:
        return notify.choices(session, agent_id)


@router.post("/account/notifications")
def choose(
    request: Request,
    new_ticket: str = Form(""),
    assigned: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    check_csrf(csrf, me.csrf)
    with site_of(request).db.write() as session:
        notify.choose(session, me.agent_id, new_ticket=new_ticket == "on", assigned=assigned == "on")
    return RedirectResponse("/account?notifications=saved", status_code=303)
