"""Replying in Debian's Chromium: the agent writes a reply with a Cc and an attachment on the
ticket page, serve's outbox sender hands it to a real aiosmtpd relay with the threading headers,
and the customer's answer, sent over SMTP, appears in the same ticket."""

from __future__ import annotations

import threading

from sqlalchemy import select

from ingest.outbound import OutboxSender
from models import Message
from postdesk.web.server import WebServer
from relay import TestRelay
from test_browser import ARTIFACTS, CHROMIUM, browser_page  # noqa: F401
from webhelp import db, make_agent, sign_in_browser  # noqa: F401
from waiting import wait_for

import pytest

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="no Debian chromium")


def test_an_agent_replies_in_the_browser_and_the_customers_answer_threads_back(postdesk, db, browser_page, tmp_path):
    relay, stop = TestRelay(), threading.Event()
    sender = OutboxSender(postdesk.app.db, relay.config(), retry_seconds=1)
    sending = threading.Thread(target=sender.run, args=(stop, 0.1), daemon=True)
    server = WebServer(postdesk.settings.model_copy(update={"web_port": 0}), postdesk.app.db)
    url = server.start()
    page = browser_page
    try:
        sending.start()
        postdesk.send(
            b"From: Carla Customer <carla@example.org>\r\nTo: support@example.com\r\n"
            b"Subject: Printer jammed\r\nMessage-ID: <jam@example.org>\r\n\r\nIt says PC LOAD LETTER.\r\n",
            sender="carla@example.org",
        )
        postdesk.drain()
        sam = make_agent(db, "sam@example.com", departments=["Support"])
        sign_in_browser(page, url, sam)
        page.click("text=Printer jammed")
        page.wait_for_url("**/tickets/*")

        form = page.locator("form.reply")
        assert form.locator("input[name=to]").input_value() == "carla@example.org"
        form.locator("input[name=cc]").fill("boss@example.net")
        form.locator("textarea[name=body]").fill("Please load letter-size paper.")
        steps = tmp_path / "steps.txt"
        steps.write_text("1. Open tray 2.\n")
        form.locator("input[name=files]").set_input_files(str(steps))
        ARTIFACTS.mkdir(exist_ok=True)
        form.screenshot(path=str(ARTIFACTS / "reply-form.png"))
        page.screenshot(path=str(ARTIFACTS / "ticket-with-reply-form.png"), full_page=True)
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/tickets/*#m*")
        assert "Please load letter-size paper." in page.content()

        wait_for(lambda: relay.received, 30, "the relay receiving the reply")
        [got] = relay.received
        msg = got.message
        assert sorted(got.rcpt_tos) == ["boss@example.net", "carla@example.org"]
        assert msg["From"].addresses[0].addr_spec == "support@example.com"
        assert msg["In-Reply-To"] == "<jam@example.org>" and msg["References"] == "<jam@example.org>"
        assert msg["Message-ID"].startswith("<pd.")
        assert [a.get_filename() for a in msg.iter_attachments()] == ["steps.txt"]

        postdesk.send(
            (
                "From: carla@example.org\r\nTo: support@example.com\r\nSubject: Re: Printer jammed\r\n"
                f"In-Reply-To: {msg['Message-ID']}\r\nReferences: {msg['Message-ID']}\r\n\r\n"
                "Paper loaded, it prints now.\r\n"
            ).encode(),
            sender="carla@example.org",
        )
        postdesk.drain()
        page.reload()
        text = page.content()
        assert "Paper loaded, it prints now." in text and "a reply to one of our messages" in text
        assert "Sent " in text
        with postdesk.app.db.read() as session:
            assert len(set(session.scalars(select(Message.ticket_id)))) == 1
        page.screenshot(path=str(ARTIFACTS / "ticket-answered.png"), full_page=True)
    finally:
        stop.set()
        sending.join(10)
        server.stop()
        relay.stop()
