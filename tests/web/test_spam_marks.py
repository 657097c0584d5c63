"""Spam / not spam from the web view, on mail that arrived over SMTP: the ticket moves, the filter
learns at once (the next similar mail scores differently), each click is audited, and an agent
cannot mark what another department's tickets hold."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import AuditEvent, SpamLabel
from spamhelp import deliver, mail, teach, ticket, verdict
from webhelp import browser, clock, csrf_of, db, make_agent, sign_in, web  # noqa: F401

WATCHES = "replica watches luxury discount swiss rolex shipping today limited stock"


def _signed_in(web, db, clock, email="sam@example.com", **kw):
    client = browser(web)
    sign_in(client, make_agent(db, email, **kw), clock)
    return client


def _mark(client, message_id: int, label: str, page: str):
    return client.post(f"/messages/{message_id}/mark", data={"csrf": csrf_of(client.get(page).text), "label": label})


def test_marking_a_message_spam_moves_its_ticket_and_the_next_similar_mail_scores_higher(postdesk, web, db, clock):
    teach(postdesk.app)
    first = deliver(postdesk, mail(1, "ham", body=WATCHES, sender="seller@watches.example"))
    before = verdict(postdesk, first)
    assert ticket(postdesk, first).queue != "spam", before.verdict
    client = _signed_in(web, db, clock, departments=["Support"])
    page = f"/tickets/{ticket(postdesk, first).id}"
    assert 'name="label" value="spam"' in client.get(page).text

    response = _mark(client, first, "spam", page)
    assert response.status_code == 303 and response.headers["location"] == f"{page}#m{first}"
    assert ticket(postdesk, first).queue == "spam"
    assert "Marked spam." in client.get(page).text
    assert f"/tickets/{ticket(postdesk, first).id}" in client.get("/queues/spam").text
    assert f"/tickets/{ticket(postdesk, first).id}" not in client.get("/queues/open").text

    second = deliver(postdesk, mail(2, "ham", body=WATCHES + " hurry", sender="other@watches.example"))
    assert verdict(postdesk, second).score > before.score + 0.1, (before.score, verdict(postdesk, second).score)

    response = _mark(client, first, "ham", page)  # a change of mind: unlearned as spam, learned as ham
    assert response.status_code == 303 and ticket(postdesk, first).queue == "inbox"
    with postdesk.app.db.read() as session:
        assert session.scalar(select(SpamLabel.label).where(SpamLabel.key == f"message:{first}")) == "ham"
        marks = session.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.action.like("spam-mark-%"))
            .order_by(AuditEvent.id)
        ).all()
    agent = re.search(r"agent:\d+", marks[0].actor)[0]
    assert [tuple(m) for m in marks] == [
        (agent, "spam-mark-spam", {"message": first}),
        (agent, "spam-mark-ham", {"message": first}),
    ]


def test_a_queue_selection_is_marked_with_one_button(postdesk, web, db, clock):
    ids = [deliver(postdesk, mail(n, "ham", subject=f"Question {n}")) for n in range(3)]
    client = _signed_in(web, db, clock, departments=["Support"])
    token = csrf_of(client.get("/queues/open").text)
    tickets = [ticket(postdesk, i).id for i in ids]
    assert all(f'name="ticket" value="{t}" form="selection"' in client.get("/queues/open").text for t in tickets)

    response = client.post("/queues/open/mark", data={"csrf": token, "label": "spam", "ticket": tickets[:2]})
    assert response.status_code == 303 and response.headers["location"] == "/queues/open?marked=2&as=spam"
    assert "2 tickets marked spam." in client.get(response.headers["location"]).text
    assert [ticket(postdesk, i).queue for i in ids] == ["spam", "spam", "inbox"]
    spam_queue = client.get("/queues/spam").text
    assert "Question 0" in spam_queue and "Question 1" in spam_queue and "Question 2" not in spam_queue

    response = client.post("/queues/spam/mark", data={"csrf": token, "label": "ham", "ticket": [tickets[0]]})
    assert response.status_code == 303 and [ticket(postdesk, i).queue for i in ids] == ["inbox", "spam", "inbox"]


def test_marking_needs_the_ticket_to_be_visible_a_form_token_and_a_known_label(postdesk, web, db, clock):
    ours = deliver(postdesk, mail(1, "ham"))
    theirs = deliver(postdesk, mail(2, "ham", to="billing@example.com"), to="billing@example.com")
    client = _signed_in(web, db, clock, departments=["Support"])
    token = csrf_of(client.get("/queues/open").text)
    their_ticket = ticket(postdesk, theirs).id

    assert client.post(f"/messages/{theirs}/mark", data={"csrf": token, "label": "spam"}).status_code == 404
    assert client.post("/messages/999999/mark", data={"csrf": token, "label": "spam"}).status_code == 404
    both = [ticket(postdesk, ours).id, their_ticket]
    assert client.post("/queues/open/mark", data={"csrf": token, "label": "spam", "ticket": both}).status_code == 404
    assert (
        client.post("/queues/nope/mark", data={"csrf": token, "label": "spam", "ticket": [both[0]]}).status_code == 404
    )
    assert client.post(f"/messages/{ours}/mark", data={"csrf": "forged", "label": "spam"}).status_code == 403
    assert client.post(f"/messages/{ours}/mark", data={"csrf": token, "label": "eggs"}).status_code == 400
    assert (
        client.post(
            "/queues/open/mark", data={"csrf": token, "label": "spam", "ticket": list(range(1, 300))}
        ).status_code
        == 400
    )
    assert [ticket(postdesk, m).queue for m in (ours, theirs)] == ["inbox", "inbox"]
    with postdesk.app.db.read() as session:
        assert session.scalar(select(SpamLabel.id)) is None  # nothing learned

    signed_out = browser(web)
    assert signed_out.post(f"/messages/{ours}/mark", data={"csrf": token, "label": "spam"}).status_code == 303
    admin = _signed_in(web, db, clock, "boss@example.com", role="admin")
    assert _mark(admin, theirs, "spam", f"/tickets/{their_ticket}").status_code == 303
    assert ticket(postdesk, theirs).queue == "spam"
