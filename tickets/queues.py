"""The agents' queues: which tickets each holds, their counts, and pages of them in sort order.

A queue is a ticket `queue` value and a set of statuses (Mine: the viewer's assigned open work).
A page is read by keyset, never OFFSET: for every (department, status) pair the matching index
(`ix_tickets_*` in models.ticket) is walked from the cursor for one page, and the pieces are merged,
so a page costs the same with a thousand tickets or a million. Counts stop at `COUNT_CAP`: an
exact count of a large queue means reading all of it on every page view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, UTC
from functools import lru_cache

from sqlalchemy import bindparam, func, literal, select, tuple_, union_all
from sqlalchemy.orm import Session

from models import Agent, Contact, Department, Message, Ticket
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


QUEUES = {
    q.key: q
    for q in (
        Queue("open", "Open", "inbox", ("new", "open")),
        Queue("pending", "Pending", "inbox", ("pending",)),
        Queue("mine", "Mine", "inbox", _OPEN, mine=True),
        Queue("review", "Review", "review", STATUSES),
        Queue("spam", "Spam", "spam", STATUSES),
        Queue("automatic", "Automatic", "automatic", STATUSES),
        Queue("closed", "Closed", "inbox", ("resolved", "closed")),
        Queue("trash", "Trash", "trash", STATUSES),
    )
}
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
    return [None] if scope.departments is None else list(sorted(scope.departments))


def _assignee(queue: Queue, filters: Filters) -> str | None:
    """Which assignee condition applies: "me", "none", "agent" (one given by id) or None."""
    if queue.mine or filters.assignee == "me":
        return "me"
    if filters.assignee == "none":
        return "none"
    return "agent" if filters.assignee and filters.assignee.isdigit() else None


def _conditions(queue: Queue, assignee: str | None) -> list:
    where = [Ticket.queue == queue.queue]
    if assignee == "me":
        where.append(Ticket.assignee_id == bindparam("me"))
    elif assignee == "none":
        where.append(Ticket.assignee_id.is_(None))
    elif assignee == "agent":
        where.append(Ticket.assignee_id == bindparam("assignee"))
    return where


def _keys(sort: str):
    return (Ticket.updated_at, Ticket.id) if sort == "updated" else (Ticket.id,)


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


# The statements are built once per shape and their values bound at each call: building one
# (a union of up to departments x statuses selects) cost more Python time than running it.
@lru_cache(maxsize=512)
def _walk(
    key: str,
    departments: int,
    statuses: tuple[str, ...],
    assignee: str | None,
    sort: str,
    descending: bool,
    keyset: bool,
):
    """Sort keys of the next tickets in each of `departments` (0: all, unconditioned) x `statuses`, merged."""
    queue, keys = QUEUES[key], _keys(sort)
    after = [bindparam(f"after{i}", type_=k.type) for i, k in enumerate(keys)]
    pieces = []
    for d in range(departments or 1):
        for n in range(len(statuses)):
            piece = select(*keys).where(*_conditions(queue, assignee), Ticket.status == bindparam(f"status{n}"))
            if departments:
                piece = piece.where(Ticket.department_id == bindparam(f"department{d}"))
            if keyset:
                piece = piece.where(tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after))
            order = [k.desc() for k in keys] if descending else list(keys)
            pieces.append(select(piece.order_by(*order).limit(bindparam("limit")).subquery()))
    merged = union_all(*pieces).subquery()
    columns = [merged.c[k.key] for k in keys]
    return (
        select(*columns).order_by(*([c.desc() for c in columns] if descending else columns)).limit(bindparam("limit"))
    )


def _ids(
    session: Session, key: str, scope: Scope, filters: Filters, after: tuple | None, forward: bool, limit: int
) -> list[tuple]:
    """Sort keys of up to `limit` tickets after `after`, walking forward or backward in sort order."""
    queue = QUEUES[key]
    departments, statuses = _departments(scope, filters), _statuses(queue, filters)
    if not departments or not statuses:
        return []
    walk = _walk(
        key,
        0 if departments == [None] else len(departments),
        statuses,
        _assignee(queue, filters),
        filters.sort,
        filters.descending == forward,
        after is not None,
    )
    assignee = filters.assignee or ""
    values: dict[str, object] = {
        "limit": limit,
        "me": scope.agent_id,
        "assignee": int(assignee) if assignee.isdigit() else 0,
    }
    values |= {f"status{n}": status for n, status in enumerate(statuses)}
    values |= {f"department{d}": department for d, department in enumerate(departments) if department is not None}
    values |= {f"after{i}": value for i, value in enumerate(after or ())}
    return [tuple(r) for r in session.execute(walk, values)]


def page(
    session: Session,
    key: str,
    scope: Scope,
    filters: Filters,
    cursor: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> Page:
    """One page of queue `key`: after `cursor` (the next page), or before `before` (the previous one)."""
    limit = limit or PAGE
    mark = _decode_cursor(before or cursor or "", filters) if (before or cursor) else None
    forward = before is None
    found = _ids(session, key, scope, filters, mark, forward, limit + 1)
    more = len(found) > limit
    found = found[:limit] if forward else list(reversed(found[:limit]))
    rows = _rows(session, [k[-1] for k in found])
    has_before = (mark is not None) if forward else more
    has_after = more if forward else True
    return Page(
        rows,
        encode_cursor(found[-1]) if found and has_after else None,
        encode_cursor(found[0]) if found and has_before else None,
    )


_MESSAGES = select(func.count()).where(Message.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
_ROW = (
    select(
        Ticket.id,
        Ticket.subject,
        Ticket.status,
        Ticket.queue,
        Department.name,
        Contact.name,
        Contact.address,
        Agent.name,
        Agent.email,
        Ticket.updated_at,
        Ticket.created_at,
        _MESSAGES,
    )
    .outerjoin(Department, Department.id == Ticket.department_id)
    .outerjoin(Contact, Contact.id == Ticket.contact_id)
    .outerjoin(Agent, Agent.id == Ticket.assignee_id)
    .where(Ticket.id.in_(bindparam("ids", expanding=True)))
)


def _rows(session: Session, ids: list[int]) -> list[dict]:
    """The rows of a page in one query (Core, not ORM objects: a page is 50 rows on every view)."""
    if not ids:
        return []
    found = {row[0]: row for row in session.execute(_ROW, {"ids": ids})}
    return [_row(found[i]) for i in ids if i in found]


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _row(r) -> dict:
    (
        ticket_id,
        subject,
        status,
        queue,
        department,
        contact_name,
        contact_address,
        agent_name,
        agent_email,
        updated_at,
        created_at,
        messages,
    ) = r
    return {
        "id": ticket_id,
        "subject": subject,
        "status": status,
        "queue": queue,
        "department": department,
        "requester": contact_name or contact_address,
        "requester_address": contact_address,
        "assignee": agent_name or agent_email,
        "updated_at": _aware(updated_at),
        "created_at": _aware(created_at),
        "messages": messages,
    }


@lru_cache(maxsize=4)
def _count(all_departments: bool):
    parts = []
    for key, queue in QUEUES.items():
        where = _conditions(queue, "me" if queue.mine else None) + [Ticket.status.in_(queue.statuses)]
        if not all_departments:
            where.append(Ticket.department_id.in_(bindparam("departments", expanding=True)))
        capped = select(Ticket.id).where(*where).limit(bindparam("cap")).subquery()
        parts.append(select(literal(key).label("queue"), func.count().label("n")).select_from(capped))
    return union_all(*parts)


def counts(session: Session, scope: Scope, filters: Filters = Filters()) -> dict[str, int]:
    """Tickets in each queue, each counted up to COUNT_CAP + 1 (shown as "1000+"), in one query."""
    departments = _departments(scope, replace(filters, status=None, assignee=None))
    if not departments:
        return dict.fromkeys(QUEUES, 0)
    values: dict[str, object] = {"me": scope.agent_id, "cap": COUNT_CAP + 1}
    if departments != [None]:
        values["departments"] = departments
    return {queue: n for queue, n in session.execute(_count(departments == [None]), values)}
