"""`postdesk tickets list|show|delete|restore|purge`: the stored tickets and their threads, as text or JSON;
the Trash (`tickets.trash`).

Mail text is never taken for Rich markup (a subject may say "[/x]"). A message without a text part
is shown as a text rendering of its HTML (inscriptis, link targets kept, as an agent should see
where a link points); one without a From header shows its envelope sender instead.
"""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from postdesk.cli.common import Verbs, fail, out
from postdesk.cli.workspace import open_for_reading

group = Verbs(help="Look at stored tickets; move them to the Trash and back, or purge them.")

BODY_SHOWN = 2000  # characters of each message body in the text view; --json has them all


def _one_of(kind: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        fail(f"no {kind} {value!r}: use {', '.join(allowed[:-1])} or {allowed[-1]}")


@group.command("list")
def tickets_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    queue: str | None = typer.Option(None, help="inbox, review, spam, automatic, trash or merged"),
    status: str | None = typer.Option(None, help="new, open, pending, resolved or closed"),
    limit: int = typer.Option(50, min=1),
) -> None:
    """The newest tickets."""
    from models.ticket import QUEUES, STATUSES
    from tickets.queries import list_tickets

    _one_of("queue", queue, QUEUES)
    _one_of("status", status, STATUSES)
    service = open_for_reading(ctx)
    with service.db.read() as session:
        rows = list_tickets(session, queue=queue, status=status, limit=limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "status", "queue", "messages", "contact", "subject")
    for row in rows:
        table.add_row(
            *map(
                escape,
                (
                    str(row["id"]),
                    row["status"],
                    row["queue"],
                    str(row["messages"]),
                    row["contact"] or "",
                    row["subject"],
                ),
            )
        )  # mail text is not markup
    out.print(table)


@group.command("show")
def tickets_show(ctx: typer.Context, ticket_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """One ticket with its thread: messages, spam verdicts, participants, attachments, flags, threading rule."""
    from tickets.queries import ticket_detail

    service = open_for_reading(ctx)
    with service.db.read() as session:
        detail = ticket_detail(session, ticket_id)
    if detail is None:
        fail(f"no ticket {ticket_id}")
    if as_json:
        out.print_json(json.dumps(detail))
        return
    state = f"[{detail['status']}, {detail['queue']}]"
    out.print(f"[bold]#{detail['id']}[/bold] " + escape(f"{detail['subject']}  {state}"), highlight=False)
    linked = f"  linked: #{detail['linked_ticket']}" if detail["linked_ticket"] else ""
    _plain(f"department: {detail['department']}  contact: {detail['contact'] or '(none)'}{linked}")
    _plain("participants: " + ", ".join(detail["participants"]))
    for message in detail["messages"]:
        out.rule(escape(f"message {message['id']} · rule {message['thread_rule']} · {message['date']}"))
        for line in _message_lines(message):
            _plain(line)


def _plain(text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)  # mail text is not markup


def _message_lines(m: dict) -> list[str]:
    from tickets.queries import removed_note

    lines = [f"From: {_sender(m)}", f"Subject: {m['subject']}"]
    if m["spam"]:
        lines.append(_verdict(m["spam"]))
    if m["flags"]:
        lines.append("flags: " + ", ".join(m["flags"]))
    lines += [
        f"  attachment {a['id']}: {a['filename']} ({a['sniffed_type']}, {a['size']} bytes)" for a in m["attachments"]
    ]
    lines += [f"  {removed_note(r)}" for r in m["removed_attachments"]]
    body = m["text"]
    if not body.strip() and m["html"]:
        lines.append("(HTML only; shown as text)")
        body = _html_as_text(m["html"])
    return lines + ["", body[:BODY_SHOWN] + (" […]" if len(body) > BODY_SHOWN else "")]


def _sender(m: dict) -> str:
    if m["from"]:
        return f"{m['from_name']} <{m['from']}>" if m["from_name"] else m["from"]
    if m["envelope_from"]:
        return f"{m['envelope_from']} (envelope sender; the mail has no From)"
    return "(nobody: no From header and an empty envelope sender)"


def _verdict(spam: dict) -> str:
    version = f", model version {spam['model_version']}" if spam.get("model_version") else ""
    lines = f"spam: {spam['verdict']}, score {spam['score']:.4f} (decided by {spam['reason']}{version})"
    if spam["evidence"]:
        lines += "\n  evidence: " + ", ".join(spam["evidence"])
    return lines


def _html_as_text(html: str) -> str:
    from inscriptis import get_text
    from inscriptis.model.config import ParserConfig

    return get_text(html, ParserConfig(display_links=True)).strip()


@group.command("delete")
def tickets_delete(ctx: typer.Context, ticket_id: int) -> None:
    """Move a ticket to the Trash (purged after POSTDESK_RETENTION_TRASH_DAYS; `tickets restore` brings it back)."""
    from tickets.trash import trash

    ticket = _in_transaction(ctx, lambda app, session: trash(session, ticket_id))
    out.print(f"ticket {ticket_id} moved to the Trash from {ticket.trashed_from}", highlight=False)


@group.command("restore")
def tickets_restore(ctx: typer.Context, ticket_id: int) -> None:
    """Bring a ticket back from the Trash to the queue it left."""
    from tickets.trash import restore

    ticket = _in_transaction(ctx, lambda app, session: restore(session, ticket_id))
    out.print(f"ticket {ticket_id} restored to {ticket.queue}", highlight=False)


@group.command("purge")
def tickets_purge(
    ctx: typer.Context,
    ticket_id: int,
    actor: str | None = typer.Option(None, "--actor", help="Who does this, for the audit trail."),
) -> None:
    """Erase a ticket now, with every message in it (refused while a legal hold covers it)."""
    from models.base import utcnow
    from retention.audit import os_user, record
    from retention.holds import describe, held
    from tickets.trash import TrashError, purge

    from models import Ticket

    def erase(app, session):
        if session.get(Ticket, ticket_id) is None:
            raise TrashError(f"no ticket {ticket_id}")
        if ticket_id in (cover := held(session, utcnow())).tickets:
            hold = next((h for h in cover.holds if h.ticket_id == ticket_id), cover.holds[0])
            raise TrashError(f"ticket {ticket_id} is covered by {describe(hold, named=False)}: nothing was purged")
        erased = purge(session, app.store, [ticket_id])
        record(session, actor or os_user(), "ticket-purge", "", {"ticket": ticket_id, "messages": erased.messages})
        return erased

    erased = _in_transaction(ctx, erase)
    out.print(
        f"ticket {ticket_id} purged: {erased.messages} messages, {erased.attachments} attachments", highlight=False
    )


def _in_transaction(ctx: typer.Context, work):
    """`work(app, session)` in one write transaction; a `TrashError` is the command's one-line error."""
    from postdesk.cli.workspace import open_for_writing
    from tickets.trash import TrashError

    app = open_for_writing(ctx, create=False)
    try:
        with app.db.write() as session:
            return work(app, session)
    except TrashError as exc:
        fail(str(exc))
    finally:
        app.db.dispose()
