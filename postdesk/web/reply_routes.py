"""Answering from the web view: reply (To, Cc, reply all, attachments), forward a message to an
outside address, try a failed delivery again. Each stores the mail in the thread and queues it in
the outbox in one transaction (`tickets.replies`); serve's sender delivers it.

The ticket page shows each delivery's state and the reply form through the template functions
`install` registers (`delivery_of`, `reply_defaults`), so the ticket page itself only includes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from starlette.datastructures import UploadFile

from models import Department, OutboxMail, Ticket
from models.mail.message import Part
from postdesk.secret import server_secret
from postdesk.web.auth import Viewer, check_csrf, viewer
from postdesk.web.nav import nav
from postdesk.web.site import Site, site_of
from tickets import access, outbox
from tickets.replies import Draft, Outgoing, ReplyError, default_recipients, send_forward, send_reply
from tickets.signing import MessageIdSigner
from tickets.store import MessageStore

router = APIRouter()
MAX_FILES = 20


@dataclass(frozen=True)
class Sending:
    """What answering needs beyond the site: the message store, the signer and our own addresses."""

    store: MessageStore
    signer: MessageIdSigner
    ours: frozenset[str]


def install(app: FastAPI) -> None:
    site: Site = app.state.site
    s = site.settings
    app.state.sending = Sending(
        MessageStore(site.blobs, spam_dir=s.spam_dir),
        MessageIdSigner(server_secret(s), s.smtp_hostname),
        frozenset(a for m in s.mailboxes for a in (m.address, *m.aliases)),
    )
    site.templates.globals.update(delivery_of=_delivery_of, reply_defaults=_reply_defaults)
    app.include_router(router)


def _sending(request: Request) -> Sending:
    return request.app.state.sending


def _delivery_of(request: Request, message_id: int):
    with site_of(request).db.read() as session:
        return outbox.deliveries(session, [message_id]).get(message_id)


def _reply_defaults(request: Request, ticket_id: int, answering: int | None = None, reply_all: bool = False):
    with site_of(request).db.read() as session:
        return default_recipients(session, ticket_id, answering, reply_all, _sending(request).ours)


def _visible_ticket(session, ticket_id: int, me: Viewer) -> None:
    if not access.ticket(session, ticket_id, me.departments):
        raise HTTPException(404)


def _outgoing(session, request: Request, me: Viewer, ticket_id: int) -> Outgoing:
    department = session.scalar(
        select(Department.name).join(Ticket, Ticket.department_id == Department.id).where(Ticket.id == ticket_id)
    )
    name = me.name or me.email.split("@")[0]
    sending = _sending(request)
    return Outgoing(sending.signer, sending.ours, f"{name}, {department}" if department else name)


def _reply_page(request: Request, me: Viewer, ticket_id: int, status: int = 200, **values):
    site = site_of(request)
    with site.db.read() as session:
        _visible_ticket(session, ticket_id, me)
        subject = session.scalar(select(Ticket.subject).where(Ticket.id == ticket_id))
        context = nav(session, me)
    return site.render(request, "reply.html", status, **context, ticket_id=ticket_id, subject=subject, **values)


@router.get("/tickets/{ticket_id}/reply")
def reply_page(
    ticket_id: int, request: Request, message: int | None = None, all: int = 0, me: Viewer = Depends(viewer)
):
    with site_of(request).db.read() as session:
        _visible_ticket(session, ticket_id, me)
    to, cc = _reply_defaults(request, ticket_id, message, bool(all))
    return _reply_page(request, me, ticket_id, to=to, cc=cc, answering=message, reply_all=bool(all), body="")


@router.post("/tickets/{ticket_id}/reply")
async def reply_submit(
    ticket_id: int,
    request: Request,
    to: str = Form(""),
    cc: str = Form(""),
    body: str = Form(""),
    message: str = Form(""),
    reply_all: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    files = [f for f in (await request.form()).getlist("files") if isinstance(f, UploadFile)]
    answering = int(message) if message.isdigit() and len(message) < 10 else None
    values = {"to": to, "cc": cc, "body": body, "answering": answering, "reply_all": reply_all == "on"}
    try:
        uploads = await _uploads(files, site.settings.max_message_size)
    except ReplyError as exc:
        return _reply_page(request, me, ticket_id, 400, error=str(exc), **values)
    draft = Draft(ticket_id, body, to, cc, reply_all == "on", answering, uploads)
    try:
        with site.db.write() as session:
            _visible_ticket(session, ticket_id, me)
            new_id = send_reply(
                session, _sending(request).store, draft, _outgoing(session, request, me, ticket_id), site.now()
            )
    except ReplyError as exc:
        return _reply_page(request, me, ticket_id, 400, error=str(exc), **values)
    return RedirectResponse(f"/tickets/{ticket_id}#m{new_id}", status_code=303)


@router.get("/messages/{message_id}/forward")
def forward_page(message_id: int, request: Request, me: Viewer = Depends(viewer)):
    return _forward_page(request, me, message_id)


@router.post("/messages/{message_id}/forward")
def forward_submit(
    message_id: int,
    request: Request,
    to: str = Form(""),
    note: str = Form(""),
    csrf: str = Form(""),
    me: Viewer = Depends(viewer),
):
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    try:
        with site.db.write() as session:
            found = access.message(session, message_id, me.departments)
            if found is None or found.ticket_id is None:
                raise HTTPException(404)
            ticket_id = found.ticket_id
            new_id = send_forward(
                session,
                _sending(request).store,
                message_id,
                to,
                note,
                _outgoing(session, request, me, ticket_id),
                site.now(),
            )
    except ReplyError as exc:
        return _forward_page(request, me, message_id, 400, error=str(exc), to=to, note=note)
    return RedirectResponse(f"/tickets/{ticket_id}#m{new_id}", status_code=303)


def _forward_page(request: Request, me: Viewer, message_id: int, status: int = 200, **values):
    site = site_of(request)
    with site.db.read() as session:
        found = access.message(session, message_id, me.departments)
        if found is None:
            raise HTTPException(404)
        context = nav(session, me)
        shown = {"id": found.id, "ticket_id": found.ticket_id, "subject": found.subject, "from": found.from_address}
    return site.render(request, "forward.html", status, **context, message=shown, **values)


@router.post("/outbox/{outbox_id}/retry")
def retry_delivery(outbox_id: int, request: Request, csrf: str = Form(""), me: Viewer = Depends(viewer)):
    check_csrf(csrf, me.csrf)
    site = site_of(request)
    with site.db.write() as session:
        ticket_id = outbox.ticket_of_delivery(session, outbox_id)
        if ticket_id is None or not access.ticket(session, ticket_id, me.departments):
            raise HTTPException(404)
        message_id = session.scalar(select(OutboxMail.message_id).where(OutboxMail.id == outbox_id))
        outbox.retry(session, outbox_id, site.now())
    return RedirectResponse(f"/tickets/{ticket_id}#m{message_id}", status_code=303)


async def _uploads(files: list[UploadFile], limit: int) -> list[Part]:
    """The attached files (an empty file input sends one nameless, empty part: not a file)."""
    chosen = [f for f in files if f.filename]
    if len(chosen) > MAX_FILES:
        raise ReplyError(f"attach at most {MAX_FILES} files")
    uploads, total = [], 0
    for f in chosen:
        data = await f.read(limit + 1 - total)
        total += len(data)
        if total > limit:
            raise ReplyError(f"the attachments are larger than {limit // (1024 * 1024)} MiB together")
        uploads.append(Part((f.filename or "")[:255], f.content_type or "application/octet-stream", data))
    return uploads
