"""The agents' queues: which tickets each holds, their counts, and pages of them in sort order.

A queue is a ticket `queue` value and a set of statuses (Mine: the viewer's assigned open work).
A page is read by keyset, never OFFSET: for every (department, status) pair the matching index
(`ix_tickets_*` in models.ticket) is walked from the cursor for one page, and the pieces are merged,
so a page costs the same with a thousand tickets or a million. Counts stop at `COUNT_CAP`: an
exact count of a large queue means reading all of it on every page view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import func, select, tuple_, union_all
from sqlalchemy.orm import Session, selectinload

from models import Message, Ticket
from models.ticket import STATUSES

COUNT_CAP = 1000
PAGE = 50
_OPEN = ("new", "open", "pending")


@dataclass(frozen=True)
class Queue:
    key: str
    title: str
    queue: str
    statuses: tuple[str, ...]
    mine: bool = False


QUEUES = {q.key: q for q in (
    Queue("open", "Open", "inbox", ("new", "open")),
    Queue("pending", "Pending", "inbox", ("pending",)),
    Queue("mine", "Mine", "inbox", _OPEN, mine=True),
    Queue("review", "Review", "review", STATUSES),
    Queue("spam", "Spam", "spam", STATUSES),
    Queue("automatic", "Automatic", "automatic", STATUSES),
    Queue("closed", "Closed", "inbox", ("resolved", "closed")),
    Queue("trash", "Trash", "trash", STATUSES),
)}
SORTS = ("updated", "created")


@dataclass(frozen=True)
class Scope:
    """Whose view: the viewer, and the departments they see (None: every department)."""

    agent_id: int
    departments: frozenset[int] | None


@dataclass(frozen=True)
class Filters:
    department: int | None = None
    status: str | None = None
    assignee: str | None = None  # "me", "none" or an agent id
    sort: str = "updated"
    descending: bool = True


@dataclass
class Page:
    rows: list[dict]
    next_cursor: str | None  # the page after this one in sort order
    previous_cursor: str | None  # the page before (None on the first)


def _statuses(queue: Queue, filters: Filters) -> tuple[str, ...]:
    if filters.status:
        return tuple(s for s in queue.statuses if s == filters.status)
    return queue.statuses


def _departments(scope: Scope, filters: Filters) -> list[int | None]:
    """The departments to walk; [None] means no department condition (everything visible)."""
    if filters.department is not None:
        allowed = scope.departments is None or filters.department in scope.departments
        return [filters.department] if allowed else []
    return [None] if scope.departments is None else sorted(scope.departments)


def _conditions(queue: Queue, scope: Scope, filters: Filters) -> list:
    where = [Ticket.queue == queue.queue]
    if queue.mine or filters.assignee == "me":
        where.append(Ticket.assignee_id == scope.agent_id)
    elif filters.assignee == "none":
        where.append(Ticket.assignee_id.is_(None))
    elif filters.assignee and filters.assignee.isdigit():
        where.append(Ticket.assignee_id == int(filters.assignee))
    return where


def _keys(filters: Filters):
    return (Ticket.updated_at, Ticket.id) if filters.sort == "updated" else (Ticket.id,)


def encode_cursor(row_keys: tuple) -> str:
    return "~".join(k.isoformat() if isinstance(k, datetime) else str(k) for k in row_keys)


def _decode_cursor(cursor: str, filters: Filters) -> tuple | None:
    try:
        parts = cursor.split("~")
        if filters.sort == "updated":
            return datetime.fromisoformat(parts[0]), int(parts[1])
        return (int(parts[0]),)
    except (ValueError, IndexError):
        return None


def _ids(session: Session, queue: Queue, scope: Scope, filters: Filters, after: tuple | None,
         forward: bool, limit: int) -> list[tuple]:
    """Sort keys of up to `limit` tickets after `after`, walking forward or backward in sort order."""
    keys = _keys(filters)
    descending = filters.descending == forward
    pieces = []
    for department in _departments(scope, filters):
        for status in _statuses(queue, filters):
            part = select(*keys).where(*_conditions(queue, scope, filters), Ticket.status == status)
            if department is not None:
                part = part.where(Ticket.department_id == department)
            if after is not None:
                part = part.where(tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after))
            order = [k.desc() for k in keys] if descending else list(keys)
            pieces.append(select(part.order_by(*order).limit(limit).subquery()))
    if not pieces:
        return []
    merged = union_all(*pieces).subquery()
    columns = [merged.c[k.key] for k in keys]
    order = [c.desc() for c in columns] if descending else columns
    return [tuple(r) for r in session.execute(select(*columns).order_by(*order).limit(limit))]


def page(session: Session, key: str, scope: Scope, filters: Filters, cursor: str | None = None,
         before: str | None = None, limit: int | None = None) -> Page:
    """One page of queue `key`: after `cursor` (the next page), or before `before` (the previous one)."""
    queue, limit = QUEUES[key], limit or PAGE
    mark = _decode_cursor(before or cursor or "", filters) if (before or cursor) else None
    forward = before is None
    found = _ids(session, queue, scope, filters, mark, forward, limit + 1)
    more = len(found) > limit
    found = found[:limit] if forward else list(reversed(found[:limit]))
    rows = _rows(session, [k[-1] for k in found])
    has_before = (mark is not None) if forward else more
    has_after = more if forward else True
    return Page(rows,
                encode_cursor(found[-1]) if found and has_after else None,
                encode_cursor(found[0]) if found and has_before else None)


def _rows(session: Session, ids: list[int]) -> list[dict]:
    if not ids:
        return []
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)).options(
        selectinload(Ticket.contact), selectinload(Ticket.department), selectinload(Ticket.assignee)))}
    counts = dict(session.execute(select(Message.ticket_id, func.count()).where(Message.ticket_id.in_(ids))
                                  .group_by(Message.ticket_id)).all())
    return [_row(tickets[i], counts.get(i, 0)) for i in ids if i in tickets]


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment and moment.tzinfo is None else moment


def _row(t: Ticket, messages: int) -> dict:
    return {
        "id": t.id, "subject": t.subject, "status": t.status, "queue": t.queue,
        "department": t.department.name if t.department else None,
        "requester": (t.contact.name or t.contact.address) if t.contact else None,
        "requester_address": t.contact.address if t.contact else None,
        "assignee": (t.assignee.name or t.assignee.email) if t.assignee else None,
        "updated_at": _aware(t.updated_at), "created_at": _aware(t.created_at), "messages": messages,
    }


def counts(session: Session, scope: Scope, filters: Filters = Filters()) -> dict[str, int]:
    """Tickets in each queue, each counted up to COUNT_CAP + 1 (shown as "1000+")."""
    only_department = replace(filters, status=None, assignee=None)
    result = {}
    for key, queue in QUEUES.items():
        departments = _departments(scope, only_department)
        if not departments:
            result[key] = 0
            continue
        where = _conditions(queue, scope, only_department) + [Ticket.status.in_(queue.statuses)]
        if departments != [None]:
            where.append(Ticket.department_id.in_(departments))
        capped = select(Ticket.id).where(*where).limit(COUNT_CAP + 1).subquery()
        result[key] = session.scalar(select(func.count()).select_from(capped))
    return result
