"""Read-only views of tickets as plain dicts: what the CLI prints (also as JSON) and the web view shows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models import Message, Ticket


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def list_tickets(
    session: Session, *, queue: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict]:
    counts = select(Message.ticket_id, func.count().label("n")).group_by(Message.ticket_id).subquery()
    query = (
        select(Ticket, counts.c.n)
        .outerjoin(counts, counts.c.ticket_id == Ticket.id)
        .options(selectinload(Ticket.contact))
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    if queue:
        query = query.where(Ticket.queue == queue)
    if status:
        query = query.where(Ticket.status == status)
    return [
        {
            "id": t.id,
            "subject": t.subject,
            "status": t.status,
            "queue": t.queue,
            "contact": t.contact.address if t.contact else None,
            "messages": n or 0,
            "linked_ticket": t.linked_ticket_id,
            "updated_at": _iso(t.updated_at),
        }
        for t, n in session.execute(query)
    ]


def removed_note(removed: dict) -> str:
    """The placeholder of an attachment a retention rule removed, as an agent reads it."""
    return (
        f"attachment removed by retention on {removed['removed_at'][:10]} "
        f"({removed['declared_type']}, {removed['size']} bytes)"
    )


def _message(m: Message) -> dict:
    return {
        "id": m.id,
        "direction": m.direction,
        "message_id": m.message_id_header,
        "from": m.from_address,
        "from_name": m.from_name,
        "envelope_from": m.envelope_from,
        "subject": m.subject,
        "date": _iso(m.date),
        "received_at": _iso(m.received_at),
        "source": m.source,
        "thread_rule": m.thread_rule,
        "flags": m.flags,
        "text": m.text_body,
        "has_html": bool(m.html_body),
        "html": m.html_body,
        "recipients": [{"kind": r.kind, "address": r.address, "name": r.name} for r in m.recipients],
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "declared_type": a.declared_type,
                "sniffed_type": a.sniffed_type,
                "size": a.size,
                "inline": a.inline,
            }
            for a in m.attachments
        ],
        "removed_attachments": [
            {"removed_at": _iso(r.removed_at), "declared_type": r.declared_type, "size": r.size}
            for r in m.removed_attachments
        ],
        "spam": (
            {
                "score": m.verdict.score,
                "verdict": m.verdict.verdict,
                "evidence": m.verdict.evidence,
                "reason": m.verdict.reason,
                "model_version": m.verdict.model_version,
            }
            if m.verdict
            else None
        ),
    }


def ticket_detail(session: Session, ticket_id: int) -> dict | None:
    ticket = session.get(
        Ticket,
        ticket_id,
        options=[
            selectinload(Ticket.messages).selectinload(Message.recipients),
            selectinload(Ticket.messages).selectinload(Message.attachments),
            selectinload(Ticket.messages).selectinload(Message.removed_attachments),
            selectinload(Ticket.messages).selectinload(Message.verdict),
            selectinload(Ticket.participants),
            selectinload(Ticket.contact),
            selectinload(Ticket.department),
        ],
    )
    if ticket is None:
        return None
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "queue": ticket.queue,
        "department": ticket.department.name if ticket.department else None,
        "contact": ticket.contact.address if ticket.contact else None,
        "linked_ticket": ticket.linked_ticket_id,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "trashed_at": _iso(ticket.trashed_at),
        "participants": sorted(p.address for p in ticket.participants),
        "messages": [_message(m) for m in ticket.messages],
    }
