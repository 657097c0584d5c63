"""Working on tickets in the web view, on mail that arrived over SMTP: notes, status, assignment,
merge, move and split, Trash, presence; each writes an audit record, and an agent of another department
gets a 404 for every one of them, as for a ticket that does not exist."""

from __future__ import annotations

from email.message import EmailMessage
from itertools import count

import pytest
from sqlalchemy import select

from models import AuditEvent, Message, Ticket, TicketNote, TicketParticipant
from webhelp import browser, clock, csrf_of, db, make_agent, sign_in, web  # noqa: F401

_n = count()


def mail(subject: str, *, sender: str = "carla@example.org", cc: str = "", replying_to: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Message-ID"] = f"<work{next(_n)}.{id(msg)}@example.org>"
    if cc:
        msg["Cc"] = cc
    if replying_to:
        msg["In-Reply-To"] = msg["References"] = f"<{replying_to}>"
    msg.set_content(f"About {subject}.")
    return msg.as_bytes()


def deliver(postdesk, raw: bytes, to: str = "support@example.com", sender: str = "carla@example.org") -> Message:
    postdesk.send(raw, to=to, sender=sender)
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).order_by(Message.id.desc()).limit(1)).one()


def ticket(postdesk, ticket_id: int) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, ticket_id)


def audit(postdesk, action: str) -> list[dict]:
    with postdesk.app.db.read() as session:
        return [
            e.details | {"actor": e.actor}
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        ]


def act(client, page: str, action: str, **fields):
    """Submit a form of `page` to `action`, with the page's CSRF token, as the browser would."""
    return client.post(action, data={"csrf": csrf_of(client.get(page).text), **fields})


@pytest.fixture
def team(postdesk, web, db, clock):
    """Sam (Support), Bea (Billing only), an admin; each signed in in their own browser."""
    people = {
        "sam": make_agent(db, "sam@example.com", departments=["Support"]),
        "bea": make_agent(db, "bea@example.com", departments=["Billing"]),
        "ada": make_agent(db, "ada@example.com", role="admin"),
    }
    clients = {}
    for n, (name, person) in enumerate(people.items()):
        clients[name] = browser(web, address=f"198.51.100.{20 + n}")
        sign_in(clients[name], person, clock)
        clients[name].agent_id = person.agent_id
    return clients


def test_a_note_is_stored_shown_to_agents_only_and_audited(postdesk, team):
    m = deliver(postdesk, mail("Printer on fire"))
    sam = team["sam"]
    page = f"/tickets/{m.ticket_id}"
    done = act(sam, page, f"{page}/notes", body="Customer called: <b>urgent</b>, ring back at 5")
    assert done.status_code == 303 and done.headers["location"].startswith(f"{page}#note")
    shown = sam.get(page).text
    assert "Customer called: &lt;b&gt;urgent&lt;/b&gt;, ring back at 5" in shown and "Sam" in shown
    assert act(sam, page, f"{page}/notes", body="   ").status_code == 400
    [event] = audit(postdesk, "ticket-note")
    assert event["ticket"] == m.ticket_id and event["actor"] == f"agent:{sam.agent_id}"
    assert "urgent" not in str(event)


def test_status_can_be_set_to_each_of_the_five_and_nothing_else(postdesk, team):
    m = deliver(postdesk, mail("Status please"))
    sam, page = team["sam"], f"/tickets/{m.ticket_id}"
    for status in ("open", "pending", "resolved", "closed", "new"):
        assert act(sam, page, f"{page}/status", status=status).status_code == 303
        assert ticket(postdesk, m.ticket_id).status == status
    assert act(sam, page, f"{page}/status", status="deleted").status_code == 400
    assert [e["after"] for e in audit(postdesk, "ticket-status")] == ["open", "pending", "resolved", "closed", "new"]
    back = act(sam, page, f"{page}/status", status="closed", next="/queues/open")
    assert back.headers["location"] == "/queues/open"
    elsewhere = act(sam, page, f"{page}/status", status="open", next="//evil.example/")
    assert elsewhere.headers["location"] == page


def test_a_ticket_is_assigned_to_an_agent_of_its_department_only_and_unassigned(postdesk, team):
    m = deliver(postdesk, mail("Assign me"))
    sam, page = team["sam"], f"/tickets/{m.ticket_id}"
    assert act(sam, page, f"{page}/assign", agent="me").status_code == 303
    assert ticket(postdesk, m.ticket_id).assignee_id == sam.agent_id
    assert "Assign me" in sam.get("/queues/mine").text
    assert act(sam, page, f"{page}/assign", agent=str(team["bea"].agent_id)).status_code == 400
    assert act(sam, page, f"{page}/assign", agent=str(team["ada"].agent_id)).status_code == 303  # admins: everywhere
    assert act(sam, page, f"{page}/assign", agent="").status_code == 303
    assert ticket(postdesk, m.ticket_id).assignee_id is None
    assert [e["after"] for e in audit(postdesk, "ticket-assign")] == [sam.agent_id, team["ada"].agent_id, None]


def test_merging_moves_messages_participants_and_notes_and_the_old_number_leads_to_the_new(postdesk, team):
    first = deliver(postdesk, mail("Laptop broken"))
    second = deliver(
        postdesk, mail("Laptop still broken", sender="dan@example.org", cc="eve@example.org"), sender="dan@example.org"
    )
    sam = team["sam"]
    old = f"/tickets/{second.ticket_id}"
    act(sam, old, f"{old}/notes", body="dan is carla's colleague")
    done = act(sam, old, f"{old}/merge", into=f"#{first.ticket_id}")
    assert (
        done.status_code == 303 and done.headers["location"] == f"/tickets/{first.ticket_id}?merged={second.ticket_id}"
    )
    with postdesk.app.db.read() as session:
        assert session.get(Message, second.id).ticket_id == first.ticket_id
        assert set(
            session.scalars(select(TicketParticipant.address).where(TicketParticipant.ticket_id == first.ticket_id))
        ) >= {"carla@example.org", "dan@example.org", "eve@example.org"}
        assert (
            session.scalars(select(TicketParticipant).where(TicketParticipant.ticket_id == second.ticket_id)).all()
            == []
        )
        assert session.scalar(select(TicketNote.ticket_id)) == first.ticket_id
        pointer = session.get(Ticket, second.ticket_id)
        assert (pointer.merged_into_id, pointer.queue, pointer.subject, pointer.contact_id) == (
            first.ticket_id,
            "merged",
            "",
            None,
        )
    redirect = sam.get(old)
    assert (
        redirect.status_code == 303
        and redirect.headers["location"] == f"/tickets/{first.ticket_id}?merged={second.ticket_id}"
    )
    merged_page = sam.get(redirect.headers["location"]).text
    assert "was merged into this one" in merged_page and "Laptop still broken" in merged_page
    assert "dan is carla&#39;s colleague" in merged_page
    assert f'href="/tickets/{second.ticket_id}"' not in sam.get("/queues/open").text  # no queue lists the pointer
    [event] = audit(postdesk, "ticket-merge")
    assert (event["ticket"], event["into"], event["messages"]) == (second.ticket_id, first.ticket_id, 1)
    assert (
        act(
            sam, f"/tickets/{first.ticket_id}", f"/tickets/{first.ticket_id}/merge", into=str(first.ticket_id)
        ).status_code
        == 400
    )
    # a reply to the merged ticket's message, and one naming its number, both land on the ticket it went into
    reply = deliver(
        postdesk,
        mail("Re: Laptop still broken", sender="dan@example.org", replying_to=second.message_id_header),
        sender="dan@example.org",
    )
    token = deliver(postdesk, mail(f"[#{second.ticket_id}] more", sender="dan@example.org"), sender="dan@example.org")
    assert reply.ticket_id == token.ticket_id == first.ticket_id


def test_a_moved_message_takes_its_later_replies_with_it(postdesk, team):
    a = deliver(postdesk, mail("Order 1"))
    wrong = deliver(postdesk, mail("Re: Order 1", replying_to=a.message_id_header))
    other = deliver(postdesk, mail("Order 2"))
    assert wrong.ticket_id == a.ticket_id
    sam = team["sam"]
    done = act(sam, f"/tickets/{a.ticket_id}", f"/messages/{wrong.id}/move", into=str(other.ticket_id))
    assert done.status_code == 303 and done.headers["location"] == f"/tickets/{other.ticket_id}#m{wrong.id}"
    with postdesk.app.db.read() as session:
        assert "moved" in session.get(Message, wrong.id).flags
    later = deliver(postdesk, mail("Re: Re: Order 1", replying_to=wrong.message_id_header))
    assert later.ticket_id == other.ticket_id and later.thread_rule == "reference"
    [event] = audit(postdesk, "message-move")
    assert (event["message"], event["ticket"], event["into"]) == (wrong.id, a.ticket_id, other.ticket_id)
    # moving a ticket's last message away leaves a pointer, as a merge does
    act(sam, f"/tickets/{a.ticket_id}", f"/messages/{a.id}/move", into=str(other.ticket_id))
    assert ticket(postdesk, a.ticket_id).merged_into_id == other.ticket_id


def test_splitting_a_message_off_makes_a_linked_ticket_its_replies_follow(postdesk, team):
    a = deliver(postdesk, mail("Two questions"))
    second = deliver(postdesk, mail("Re: Two questions, and another thing", replying_to=a.message_id_header))
    sam = team["sam"]
    done = act(sam, f"/tickets/{a.ticket_id}", f"/messages/{second.id}/split")
    new_id = int(done.headers["location"].rsplit("/", 1)[1])
    made = ticket(postdesk, new_id)
    assert (made.subject, made.linked_ticket_id, made.status, made.department_id) == (
        "Re: Two questions, and another thing",
        a.ticket_id,
        "open",
        ticket(postdesk, a.ticket_id).department_id,
    )
    later = deliver(postdesk, mail("Re: another thing", replying_to=second.message_id_header))
    assert later.ticket_id == new_id
    assert act(sam, f"/tickets/{a.ticket_id}", f"/messages/{a.id}/split").status_code == 400  # its only message
    assert audit(postdesk, "message-split")[0]["into"] == new_id


def test_a_ticket_deleted_to_the_trash_leaves_its_queue_and_comes_back_on_restore(postdesk, team):
    m = deliver(postdesk, mail("Delete me"))
    sam, page = team["sam"], f"/tickets/{m.ticket_id}"
    assert act(sam, page, f"{page}/trash").status_code == 303
    assert ticket(postdesk, m.ticket_id).queue == "trash"
    assert "Delete me" not in sam.get("/queues/open").text and "Delete me" in sam.get("/queues/trash").text
    assert "Restore from Trash" in sam.get(page).text
    assert act(sam, page, f"{page}/trash").status_code == 400  # in the Trash already
    assert act(sam, page, f"{page}/restore").status_code == 303
    assert ticket(postdesk, m.ticket_id).queue == "inbox" and "Delete me" in sam.get("/queues/open").text
    assert [(e["ticket"], e["queue"]) for e in audit(postdesk, "ticket-trash") + audit(postdesk, "ticket-restore")] == [
        (m.ticket_id, "inbox"),
        (m.ticket_id, "inbox"),
    ]


def test_another_agent_viewing_the_ticket_is_shown_until_they_leave(postdesk, team, clock):
    m = deliver(postdesk, mail("Who is here"))
    sam, ada, page = team["sam"], team["ada"], f"/tickets/{m.ticket_id}"
    assert 'id="presence" role="status"' in sam.get(page).text
    assert "Sam is viewing this ticket." in ada.get(page).text
    answer = ada.post(f"{page}/presence", data={"csrf": csrf_of(ada.get(page).text), "activity": "replying"})
    assert answer.json() == {"others": [{"name": "Sam", "activity": "viewing"}]}
    assert "Ada is replying to this ticket." in sam.get(page).text
    clock.advance(61)
    assert "Sam is" not in ada.get(page).text
    assert ada.post(f"{page}/presence", data={"csrf": "wrong"}).status_code == 403


def test_an_agent_of_another_department_gets_404_for_every_action(postdesk, team):
    ours = deliver(postdesk, mail("Support thing"))
    theirs = deliver(postdesk, mail("Support other"))
    bea, sam = team["bea"], team["sam"]
    token = csrf_of(bea.get("/account").text)
    t = ours.ticket_id
    for action, fields in (
        (f"/tickets/{t}/notes", {"body": "x"}),
        (f"/tickets/{t}/status", {"status": "closed"}),
        (f"/tickets/{t}/assign", {"agent": "me"}),
        (f"/tickets/{t}/merge", {"into": theirs.ticket_id}),
        (f"/messages/{ours.id}/move", {"into": theirs.ticket_id}),
        (f"/messages/{ours.id}/split", {}),
        (f"/tickets/{t}/presence", {}),
        (f"/tickets/{t}/trash", {}),
        (f"/tickets/{t}/restore", {}),
    ):
        response = bea.post(action, data={"csrf": token, **fields})
        assert response.status_code == 404, action
    billing = deliver(postdesk, mail("Billing thing"), to="billing@example.com")
    # nor into a ticket they cannot see: Sam cannot merge or move into Billing's ticket
    assert act(sam, f"/tickets/{t}", f"/tickets/{t}/merge", into=str(billing.ticket_id)).status_code == 404
    assert act(sam, f"/tickets/{t}", f"/messages/{ours.id}/move", into=str(billing.ticket_id)).status_code == 404
    assert act(sam, f"/tickets/{t}", f"/tickets/{t}/merge", into="nonsense").status_code == 404
    assert ticket(postdesk, t).status == "new" and ticket(postdesk, t).merged_into_id is None
    with postdesk.app.db.read() as session:
        assert session.scalars(select(TicketNote)).all() == []
        assert session.scalars(select(AuditEvent).where(AuditEvent.action.like("ticket-%"))).all() == []


def test_forms_without_the_csrf_token_change_nothing(postdesk, team):
    m = deliver(postdesk, mail("Forged"))
    response = team["sam"].post(f"/tickets/{m.ticket_id}/status", data={"status": "closed"})
    assert response.status_code == 403 and ticket(postdesk, m.ticket_id).status == "new"
