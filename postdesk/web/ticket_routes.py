"""The queues, the ticket page, a message's HTML body (for its sandboxed frame) and attachments."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from sqlalchemy import select

from models import Agent, Department, Message, Ticket
from postdesk.web import mail_html, work_routes
from postdesk.web.auth import Viewer, viewer
from postdesk.web.nav import nav
from postdesk.web.site import site_of
from tickets import access, queues
from tickets.queries import ticket_detail

router = APIRouter()

# Served as their own type; anything else is application/octet-stream (and always a download).
SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"})
RULES = {
    "signed": "a reply to one of our messages (signed Message-ID)",
    "reference": "a reply to a message in this ticket (References/In-Reply-To)",
    "token": "the ticket number in the subject, from a participant",
    "new": "opened this ticket",
}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _filters(request: Request) -> queues.Filters:
    q = request.query_params
    return queues.Filters(
        department=_int(q.get("department")),
        status=q.get("status") if q.get("status") in ("new", "open", "pending", "resolved", "closed") else None,
        assignee=q.get("assignee") if q.get("assignee") in ("me", "none") or _int(q.get("assignee")) else None,
        sort=sort if (sort := q.get("sort")) in queues.SORTS and sort else "updated",
        descending=q.get("order") != "asc",
    )


def _query(filters: queues.Filters, **cursor) -> str:
    values = {
        "department": filters.department,
        "status": filters.status,
        "assignee": filters.assignee,
        "sort": filters.sort if filters.sort != "updated" else None,
        "order": None if filters.descending else "asc",
        **cursor,
    }
    return urlencode({k: v for k, v in values.items() if v is not None})


@router.get("/")
def home():
    return RedirectResponse("/queues/open", status_code=303)


@router.get("/queues/{key}")
def queue_page(key: str, request: Request, me: Viewer = Depends(viewer)):
    if key not in queues.QUEUES:
        raise HTTPException(404)
    site, filters = site_of(request), _filters(request)
    q = request.query_params
    with site.db.read() as session:
        result = queues.page(session, key, me.scope, filters, cursor=q.get("after"), before=q.get("before"))
        departments = session.scalars(select(Department).order_by(Department.name)).all()
        agents = session.execute(
            select(Agent.id, Agent.name, Agent.email).where(Agent.active).order_by(Agent.name, Agent.email)
        ).all()
        context = nav(session, me, filters.department)
    departments = [d for d in departments if me.departments is None or d.id in me.departments]
    return site.render(
        request,
        "queue.html",
        **context,
        key=key,
        queue=queues.QUEUES[key],
        page=result,
        filters=filters,
        departments=departments,
        agents=agents,
        statuses=queues.QUEUES[key].statuses,
        next_url=f"/queues/{key}?{_query(filters, after=result.next_cursor)}" if result.next_cursor else None,
        previous_url=f"/queues/{key}?{_query(filters, before=result.previous_cursor)}"
        if result.previous_cursor
        else None,
        first_url=f"/queues/{key}?{_query(filters)}",
    )


@router.get("/tickets/{ticket_id}")
def ticket_page(ticket_id: int, request: Request, me: Viewer = Depends(viewer)):
    site = site_of(request)
    images_for = _int(request.query_params.get("images"))
    with site.db.read() as session:
        if not access.ticket(session, ticket_id, me.departments):
            raise HTTPException(404)
        if (into := work_routes.merged_into(session, ticket_id)) is not None:
            return RedirectResponse(f"/tickets/{into}?merged={ticket_id}", status_code=303)
        detail = ticket_detail(session, ticket_id)
        if detail is None:  # access found it: only a concurrent erasure removes it in between
            raise HTTPException(404)
        assignee = session.execute(
            select(Agent.name, Agent.email).join(Ticket, Ticket.assignee_id == Agent.id).where(Ticket.id == ticket_id)
        ).first()
        html = dict(
            session.execute(
                select(Message.id, Message.html_body).where(Message.ticket_id == ticket_id, Message.html_body != "")
            )
            .tuples()
            .all()
        )
        context = nav(session, me)
    for m in detail["messages"]:
        m["rule_text"] = RULES.get(m["thread_rule"], m["thread_rule"])
        if m["id"] in html:
            m["remote_images"] = mail_html.sanitise(html[m["id"]], {}).remote_images
            m["images_loaded"] = m["id"] == images_for
    return site.render(
        request,
        "ticket.html",
        **context,
        ticket=detail,
        assignee=(assignee[0] or assignee[1]) if assignee else None,
        merged=_int(request.query_params.get("merged")),
        **work_routes.work_context(site, ticket_id, me),
    )


@router.get("/messages/{message_id}/body")
def message_body(message_id: int, request: Request, me: Viewer = Depends(viewer)):
    site = site_of(request)
    allow_remote = request.query_params.get("images") == "1"
    with site.db.read() as session:
        message = access.message(session, message_id, me.departments)
        if message is None:
            raise HTTPException(404)
        html = message.html_body
        parts = access.inline_images(session, message_id)
    images = {}
    for part, sha256 in parts:
        if part.sniffed_type in mail_html.IMAGE_TYPES and part.size <= mail_html.MAX_INLINE_IMAGE:
            try:
                data = site.blobs.get(sha256)
            except OSError:  # a blob file gone missing: the image is not shown, the message still is
                continue
            images[part.content_id.strip("<>").lower()] = mail_html.InlineImage(part.sniffed_type, data)
    shown = mail_html.sanitise(html, images, allow_remote)
    return HTMLResponse(
        mail_html.DOCUMENT.format(body=shown.html),
        headers={
            "Content-Security-Policy": mail_html.body_policy(allow_remote),
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


@router.get("/attachments/{attachment_id}")
def attachment(attachment_id: int, request: Request, me: Viewer = Depends(viewer)):
    site = site_of(request)
    with site.db.read() as session:
        found = access.attachment(session, attachment_id, me.departments)
    if found is None:
        raise HTTPException(404)
    part, sha256 = found
    path = site.blobs.path(sha256)
    if not path.is_file():
        raise HTTPException(404)
    name = part.filename or f"attachment-{part.id}"
    kind = part.sniffed_type if part.sniffed_type in SAFE_TYPES else "application/octet-stream"
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_").replace("?", "_")
    return FileResponse(
        path,
        media_type=kind,
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
