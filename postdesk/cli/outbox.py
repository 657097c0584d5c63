"""`postdesk outbox list|send|retry`: the mail waiting to go out, sending it, and trying a failed one again."""

from __future__ import annotations

import json
import signal

import typer

from postdesk.cli.common import Verbs, fail, out
from postdesk.cli.workspace import open_for_reading, open_for_writing

group = Verbs(help="Replies, forwards, acknowledgements and notifications waiting to go out.")


@group.command("list")
def outbox_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    everything: bool = typer.Option(False, "--all", help="sent mail too"),
) -> None:
    """Queued and failed deliveries: id, kind, ticket, attempts, next attempt, last error."""
    from sqlalchemy import select

    from models import Message, OutboxMail

    app = open_for_reading(ctx)
    query = select(OutboxMail, Message.ticket_id).join(Message, Message.id == OutboxMail.message_id)
    if not everything:
        query = query.where(OutboxMail.status != "sent")
    with app.db.read() as session:
        rows = [
            {
                "id": o.id,
                "kind": o.kind,
                "ticket": ticket,
                "status": o.status,
                "attempts": o.attempts,
                "next_attempt_at": o.next_attempt_at.isoformat(),
                "last_error": o.last_error,
            }
            for o, ticket in session.execute(query.order_by(OutboxMail.id))
        ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for r in rows:
        out.print(
            f"{r['id']}  {r['kind']}  ticket {r['ticket']}  {r['status']}  {r['attempts']} attempts"
            f"{'  ' + r['last_error'] if r['last_error'] else ''}",
            highlight=False,
            markup=False,
        )
    out.print(f"{len(rows)} {'deliveries' if everything else 'waiting or failed'}", highlight=False)


@group.command("send")
def outbox_send(
    ctx: typer.Context, watch: bool = typer.Option(False, "--watch", help="keep sending until Ctrl-C or SIGTERM")
) -> None:
    """Send what is due through the relay in the settings (`serve` does this all the time)."""
    from postdesk.stop_flag import StopFlag

    app = open_for_writing(ctx, create=False)
    sender = app.outbox_sender()
    if sender is None:
        fail("no outbound relay is set (POSTDESK_RELAY_HOST)")
    if not watch:
        out.print(f"sent {sender.send_due()}", highlight=False)
        return
    stop = StopFlag()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sender.run(stop, app.settings.outbox_poll_interval)


@group.command("retry")
def outbox_retry(ctx: typer.Context, outbox_id: int) -> None:
    """Queue a failed delivery again, at once."""
    from models.base import utcnow
    from tickets import outbox

    app = open_for_writing(ctx, create=False)
    with app.db.write() as session:
        if not outbox.retry(session, outbox_id, utcnow()):
            fail(f"no failed delivery {outbox_id}")
    out.print(f"{outbox_id} is queued again", highlight=False)
