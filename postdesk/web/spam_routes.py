""" "Spam" / "not spam" from the ticket page (one message) or a queue (the tickets ticked): the
message store records the label, which the ledger turns into events every live model replays (the
runner scores the next mail with it), moves the ticket, and writes the audit record."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from models import Message
from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.site import site_of
from postdesk.web.spam_desk import actor, spam_desk
from tickets import access, queues
from tickets.spam_marks import mark_message

router = APIRouter()

LABELS = {"spam": "spam", "ham": "ham"}
MOST_TICKETS = 200  # a queue page holds 50; more is not a click


def _label(value: str) -> str:
    if value not in LABELS:
        raise HTTPException(400, "Say spam or ham.")
    return LABELS[value]


@router.post("/messages/{message_id}/mark")
def mark_one(
    message_id: int, request: Request, label: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)
):
    check_csrf(csrf, me.csrf)
    label, site, desk = _label(label), site_of(request), spam_desk(request)
    with site.db.write() as session:
        message = access.message(session, message_id, me.departments)
        if message is None:
            raise HTTPException(404)
        ticket_id = message.ticket_id
        mark_message(
            session, message_id, label, store=desk.store, spam_filter=desk.spam_filter, actor=actor(me.agent_id)
        )
    return RedirectResponse(f"/tickets/{ticket_id}#m{message_id}", status_code=303)


@router.post("/queues/{key}/mark")
def mark_tickets(
    key: str,
    request: Request,
    label: str = Form(""),
    ticket: list[int] = Form([]),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    """Each ticked ticket's first message, the one whose label decides the ticket's queue."""
    check_csrf(csrf, me.csrf)
    if key not in queues.QUEUES:
        raise HTTPException(404)
    label, site, desk = _label(label), site_of(request), spam_desk(request)
    ticket_ids = sorted(set(ticket))
    if len(ticket_ids) > MOST_TICKETS:
        raise HTTPException(400, f"Tick at most {MOST_TICKETS} tickets at once.")
    with site.db.write() as session:
        if not all(access.ticket(session, t, me.departments) for t in ticket_ids):
            raise HTTPException(404)
        firsts = (
            session.scalars(
                select(func.min(Message.id)).where(Message.ticket_id.in_(ticket_ids)).group_by(Message.ticket_id)
            ).all()
            if ticket_ids
            else []
        )
        for message_id in firsts:
            mark_message(
                session, message_id, label, store=desk.store, spam_filter=desk.spam_filter, actor=actor(me.agent_id)
            )
    return RedirectResponse(f"/queues/{key}?marked={len(firsts)}&as={label}", status_code=303)
