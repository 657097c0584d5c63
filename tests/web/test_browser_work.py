"""Working on tickets in Debian's Chromium: merging two tickets through the form, the keyboard
shortcuts of the queue and ticket pages, and pages that fit a 375 px wide phone without scrolling sideways."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Message, Ticket
from postdesk.web.server import WebServer
from test_browser import ARGS, ARTIFACTS, CHROMIUM, wait_for
from webhelp import PASSWORD, db, make_agent  # noqa: F401

pytestmark = pytest.mark.skipif(
    not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


def mail(subject: str, body: str = "Hello.", sender: str = "carla@example.org") -> bytes:
    return (f"From: Carla <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n").encode()


@pytest.fixture
def site(postdesk, db):
    server = WebServer(postdesk.settings.model_copy(update={"web_port": 0}), postdesk.app.db)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def signed_in(chromium, url: str, db, width: int = 1280):
    """A page of a fresh browser context, signed in as Sam of Support (no second factor)."""
    make_agent(db, "sam@example.com", departments=["Support"], two_factor=False)
    page = chromium.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(url + "signin")
    page.fill("input[name=email]", "sam@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/open")
    return page


def tickets_of(postdesk) -> dict[str, int]:
    with postdesk.app.db.read() as session:
        return dict(session.execute(select(Message.subject, Message.ticket_id)).all())


def test_an_agent_merges_two_tickets_and_the_old_number_leads_to_the_merged_one(postdesk, db, site, chromium):
    postdesk.send(mail("Router blinks red"))
    postdesk.send(mail("Router still blinks", body="Same router as before."))
    postdesk.drain()
    first, second = tickets_of(postdesk)["Router blinks red"], tickets_of(postdesk)["Router still blinks"]
    page = signed_in(chromium, site, db)

    page.goto(f"{site}tickets/{second}")
    page.click("text=Merge…")
    page.fill("form[action$='/merge'] input[name=into]", str(first))
    page.screenshot(path=str(ARTIFACTS / "merge-form.png"))
    page.click("form[action$='/merge'] button")
    page.wait_for_url(f"**/tickets/{first}?merged={second}")
    assert page.locator("section.message").count() == 2
    assert "Same router as before." in page.inner_text("article.ticket")
    assert f"Ticket #{second} was merged into this one." in page.inner_text("main")
    page.goto(f"{site}tickets/{second}")
    page.wait_for_url(f"**/tickets/{first}?merged={second}")
    page.goto(f"{site}queues/open")
    assert page.locator("table.tickets tbody tr").count() == 1


def test_j_k_move_o_opens_and_e_closes_from_the_keyboard(postdesk, db, site, chromium):
    for subject in ("Oldest question", "Middle question", "Newest question"):
        postdesk.send(mail(subject))
    postdesk.drain()
    ids = tickets_of(postdesk)
    page = signed_in(chromium, site, db)

    selected = "table.tickets tr.selected"
    page.keyboard.press("j")
    assert "Newest question" in page.inner_text(selected)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert "Middle question" in page.inner_text(selected)
    page.keyboard.press("o")
    page.wait_for_url(f"**/tickets/{ids['Middle question']}")

    page.keyboard.press("j")
    assert page.locator("section.message.selected").count() == 1
    page.keyboard.press("r")  # no reply form on this page: nothing happens
    assert page.url.endswith(f"/tickets/{ids['Middle question']}")
    page.go_back()
    page.wait_for_url("**/queues/open")
    page.keyboard.press("j")
    page.keyboard.press("e")  # close the selected ticket, and stay on the queue
    wait_for(lambda: page.locator("table.tickets tbody tr").count() == 2, what="the closed ticket leaving the queue")
    with postdesk.app.db.read() as session:
        assert session.get(Ticket, ids["Newest question"]).status == "closed"
    page.fill("header input[name=q]", "jjj")  # typing in a field is typing, not shortcuts
    assert page.locator(selected).count() == 0 and page.url.endswith("/queues/open")


def test_queue_ticket_search_and_account_pages_fit_a_phone_375_px_wide(postdesk, db, site, chromium):
    long_word = "Supercalifragilistic" * 8
    postdesk.send(
        mail(
            f"A very long subject line that goes on and on {long_word}",
            body=f"{long_word}\r\n" * 3,
            sender="someone.with.a.remarkably.long.address@subdomain.example.org",
        )
    )
    postdesk.send(
        b"From: Html <html@example.org>\r\nTo: support@example.com\r\nSubject: Wide html\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
        b"<table width=1200><tr><td>wide zebra</td></tr></table>\r\n"
    )
    postdesk.drain()
    ids = sorted(tickets_of(postdesk).values())
    page = signed_in(chromium, site, db, width=375)
    ARTIFACTS.mkdir(exist_ok=True)
    with postdesk.app.db.write() as session:  # a note with a long word, too
        from tickets.work import add_note
        from models.base import utcnow

        add_note(session, ids[0], None, long_word, actor="test", now=utcnow())
    for name, path in (
        ("queue", "queues/open"),
        ("ticket", f"tickets/{ids[0]}"),
        ("ticket-html", f"tickets/{ids[1]}"),
        ("search", "search?q=zebra"),
        ("account", "account"),
    ):
        page.goto(site + path)
        page.wait_for_load_state("load")
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
        assert width <= 375, f"{path}: {width} px wide"


def test_r_opens_the_reply_form_and_the_other_agent_sees_who_is_replying(postdesk, db, site, chromium):
    postdesk.send(mail("Who answers this"))
    postdesk.drain()
    ticket_id = tickets_of(postdesk)["Who answers this"]
    make_agent(db, "ada@example.com", departments=["Support"], two_factor=False)
    sam = signed_in(chromium, site, db)
    ada = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
    ada.goto(site + "signin")
    ada.fill("input[name=email]", "ada@example.com")
    ada.fill("input[name=password]", PASSWORD)
    ada.click("button[type=submit]")
    ada.wait_for_url("**/queues/open")

    sam.goto(f"{site}tickets/{ticket_id}")
    ada.goto(f"{site}tickets/{ticket_id}")
    assert ada.inner_text("#presence") == "Sam is viewing this ticket."
    # r puts the cursor in the reply form at the foot of the page
    sam.keyboard.press("r")
    assert sam.evaluate("document.activeElement.closest('form#reply') !== null") is True

    def ada_sees_sam_replying() -> bool:
        ada.reload()
        return ada.inner_text("#presence") == "Sam is replying to this ticket."

    wait_for(ada_sees_sam_replying, what="Ada seeing Sam replying")
