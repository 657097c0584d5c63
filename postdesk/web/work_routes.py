"""Working on tickets from the web view: notes, status, assignment, Trash, merge, move and split, and who
else is on the ticket (presence). The rules live in `tickets.work` and `tickets.presence`; here
are the forms, the permission checks (another department's ticket or message is a 404, as if it
did not exist) and what the ticket page shows of them (`work_context`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select

from models import Ticket
from models.ticket import STATUSES
from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.site import Site, site_of
from tickets import access, notify, presence, work
from tickets.store import MessageStore

router = APIRouter()


def _actor(me: Viewer) -> str:
    return f"agent:{me.agent_id}"


def _ticket_id(value: str) -> int:
    """A ticket number as typed ("#12", " 12 "); anything else is a 404 like an unknown ticket."""
    value = value.strip().lstrip("#")
    if not value.isdigit() or len(value) > 9:
        raise HTTPException(404)
    return int(value)


def _back(next_url: str, default: str) -> str:
    """Where to go after an action: a path of ours, never another site."""
    return next_url if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url else default


def _visible(session, me: Viewer, *ticket_ids: int) -> None:
    for ticket_id in ticket_ids:
        if not access.ticket(session, ticket_id, me.departments) or merged_into(session, ticket_id) is not None:
            raise HTTPException(404)


def _message_ticket(session, me: Viewer, message_id: int) -> int:
    message = access.message(session, message_id, me.departments)
    if message is None or message.ticket_id is None:
        raise HTTPException(404)
    return message.ticket_id


def _do(request: Request, me: Viewer, csrf: str, action, done: str):
    """Run `action(session, site)` in a write transaction; its answer, or the page saying why not."""
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    try:
        with site.db.write() as session:
            target = action(session, site)
    except work.WorkError as exc:
        return site.render(request, "error.html", 400, title="That did not work", text=str(exc))
    except LookupError:
        raise HTTPException(404) from None
    return RedirectResponse(target or done, status_code=303)


def _store(site: Site) -> MessageStore:
    return MessageStore(site.blobs, spam_dir=site.settings.spam_dir)


def merged_into(session, ticket_id: int) -> int | None:
    """The ticket a merged ticket points at (None for any other)."""
    return session.scalar(select(Ticket.merged_into_id).where(Ticket.id == ticket_id))


def work_context(site: Site, ticket_id: int, me: Viewer) -> dict:
    """What the ticket page shows of the work on it; opening the page says the agent is viewing it."""
    now = site.now()
    with site.db.write() as session:
        presence.seen(session, ticket_id, me.agent_id, "viewing", now)
    with site.db.read() as session:
        return {
            "notes": work.notes(session, ticket_id),
            "assignable": work.assignable(session, ticket_id),
            "assignee_id": session.scalar(select(Ticket.assignee_id).where(Ticket.id == ticket_id)),
            "statuses": STATUSES,
            "others": presence.others(session, ticket_id, me.agent_id, now),
            "poll": presence.POLL,
        }


@router.post("/tickets/{ticket_id}/notes")
def add_note(
    ticket_id: int, request: Request, body: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)
):
    def action(session, site):
        _visible(session, me, ticket_id)
        note = work.add_note(session, ticket_id, me.agent_id, body, actor=_actor(me), now=site.now())
        return f"/tickets/{ticket_id}#note{note}"

    return _do(request, me, csrf, action, f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/status")
def set_status(
    ticket_id: int,
    request: Request,
    status: str = Form(""),
    next: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    def action(session, site):
        _visible(session, me, ticket_id)
        work.set_status(session, ticket_id, status, actor=_actor(me), now=site.now())

    return _do(request, me, csrf, action, _back(next, f"/tickets/{ticket_id}"))


@router.post("/tickets/{ticket_id}/assign")
def assign(ticket_id: int, request: Request, agent: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)):
    def action(session, site):
        _visible(session, me, ticket_id)
        chosen = me.agent_id if agent == "me" else int(agent) if agent.isdigit() and len(agent) < 10 else None
        if agent not in ("", "me") and chosen is None:
            raise work.WorkError("Choose an agent, or nobody.")
        work.assign(
            session,
            ticket_id,
            chosen,
            actor=_actor(me),
            now=site.now(),
            by_agent_id=me.agent_id,
            links=notify.Links(site.settings.web_url, site.settings.smtp_hostname),
        )

    return _do(request, me, csrf, action, f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/trash")
def to_trash(ticket_id: int, request: Request, csrf: str = Form(""), me: Viewer = Depends(viewer)):
    def action(session, site):
        _visible(session, me, ticket_id)
        work.to_trash(session, ticket_id, actor=_actor(me), now=site.now())

    return _do(request, me, csrf, action, f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/restore")
def from_trash(ticket_id: int, request: Request, csrf: str = Form(""), me: Viewer = Depends(viewer)):
    def action(session, site):
        _visible(session, me, ticket_id)
        work.from_trash(session, ticket_id, actor=_actor(me), now=site.now())

    return _do(request, me, csrf, action, f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/merge")
def merge(ticket_id: int, request: Request, into: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)):
    def action(session, site):
        target = _ticket_id(into)
        _visible(session, me, ticket_id, target)
        work.merge(session, _store(site), ticket_id, target, actor=_actor(me), now=site.now())
        return f"/tickets/{target}?merged={ticket_id}"

    return _do(request, me, csrf, action, f"/tickets/{ticket_id}")


@router.post("/messages/{message_id}/move")
def move_message(
    message_id: int, request: Request, into: str = Form(""), csrf: str = Form(""), me: Viewer = Depends(viewer)
):
    def action(session, site):
        source, target = _message_ticket(session, me, message_id), _ticket_id(into)
        _visible(session, me, source, target)
        work.move_message(session, _store(site), message_id, target, actor=_actor(me), now=site.now())
        return f"/tickets/{target}#m{message_id}"

    return _do(request, me, csrf, action, "/")


@router.post("/messages/{message_id}/split")
def split(message_id: int, request: Request, csrf: str = Form(""), me: Viewer = Depends(viewer)):
    def action(session, site):
        _visible(session, me, _message_ticket(session, me, message_id))
        return f"/tickets/{work.split(session, _store(site), message_id, actor=_actor(me), now=site.now())}"

    return _do(request, me, csrf, action, "/")


@router.post("/tickets/{ticket_id}/presence")
def tell_presence(
    ticket_id: int,
    request: Request,
    activity: str = Form("viewing"),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    """The ticket page's script, every `presence.POLL` seconds: this agent is here; who else is."""
    check_csrf(csrf, me.csrf)
    site, now = site_of(request), site_of(request).now()
    with site.db.write() as session:
        _visible(session, me, ticket_id)
        presence.seen(session, ticket_id, me.agent_id, activity, now)
        others = presence.others(session, ticket_id, me.agent_id, now)
    return JSONResponse({"others": others})
