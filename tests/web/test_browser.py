"""The web view in Debian's Chromium, driven by Playwright: signing in with a TOTP code, reading hostile
HTML mail without any script running or any request leaving until "Load images", and searching."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pyotp
import pytest

from conftest import ROOT
from postdesk.web.server import WebServer
from tickets import search
from waiting import wait_for
from webhelp import PASSWORD, db, make_agent  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


class Canary:
    """A local HTTP server standing in for the sender's: it counts the requests it gets."""

    def __init__(self):
        self.paths: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                canary.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(
                    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
                    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
                )

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def hostile_mail(canary: str) -> bytes:
    html = f"""<html><head><style>body {{ background: url({canary}/style-block.png) }}</style>
<script>window.pwned = "script";</script></head>
<body onload="window.pwned = 'onload'">
<h2>Quarterly figures</h2>
<p style="color:#333; background-image: url({canary}/style-attribute.png)">Please see the figures below.</p>
<p><a id="js" href="javascript:window.top.pwned='link'">Open the report</a></p>
<img src="{canary}/tracker.gif" onerror="window.pwned = 'onerror'" alt="tracker">
<img src="{canary}/banner.png" alt="banner" width="40">
<svg><image href="{canary}/svg.png"/></svg><video poster="{canary}/poster.png"></video>
<object data="{canary}/object"></object><link rel="stylesheet" href="{canary}/sheet.css">
<iframe src="{canary}/frame"></iframe>
</body></html>"""
    return (
        "From: Mallory Sender <mallory@example.net>\r\nTo: support@example.com\r\n"
        "Subject: Quarterly figures\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        yield page
        context.close()
        browser.close()


def test_an_agent_signs_in_reads_hostile_mail_safely_and_finds_it_by_search(postdesk, db, browser_page):
    canary = Canary()
    server = WebServer(postdesk.settings.model_copy(update={"web_port": 0}), postdesk.app.db)
    url = server.start()
    page = browser_page
    try:
        postdesk.send(hostile_mail(canary.url))
        postdesk.send(
            b"From: Carl <carl@example.org>\r\nTo: support@example.com\r\nSubject: Plain question\r\n\r\n"
            b"Where is my parcel, the zebracorn one?\r\n"
        )
        postdesk.drain()
        sam = make_agent(db, "sam@example.com", departments=["Support"])
        ARTIFACTS.mkdir(exist_ok=True)

        page.goto(url + "signin")
        page.fill("input[name=email]", sam.email)
        page.fill("input[name=password]", PASSWORD)
        page.screenshot(path=str(ARTIFACTS / "signin.png"), full_page=True)
        page.click("button[type=submit]")
        page.wait_for_url("**/signin/code")
        page.fill("input[name=code]", pyotp.TOTP(sam.secret).now())
        page.click("button[type=submit]")
        page.wait_for_url("**/queues/open")
        assert page.locator("table.tickets").inner_text().count("Quarterly figures") == 1
        page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)

        page.click("text=Quarterly figures")
        page.wait_for_url("**/tickets/*")
        frame_element = page.wait_for_selector("iframe.body")
        frame = frame_element.content_frame()
        frame.wait_for_load_state("load")
        wait_for(lambda: "Quarterly figures" in frame.content(), what="the message body showing")
        assert frame.inner_text("h2") == "Quarterly figures"
        assert page.evaluate("window.pwned") is None
        frame.click("text=Open the report", timeout=5000)  # a javascript: link, stripped: clicking does nothing
        assert page.evaluate("window.pwned") is None
        assert canary.paths == []
        page.screenshot(path=str(ARTIFACTS / "ticket.png"), full_page=True)

        page.click("text=Load images")
        page.wait_for_url("**images=*")
        wait_for(
            lambda: "/tracker.gif" in canary.paths and "/banner.png" in canary.paths,
            what="the remote images loading after the click",
        )
        assert page.evaluate("window.pwned") is None
        assert not {
            "/style-block.png",
            "/style-attribute.png",
            "/svg.png",
            "/frame",
            "/object",
            "/sheet.css",
            "/poster.png",
        } & set(canary.paths)

        page.fill("header input[name=q]", "zebracorn")
        page.press("header input[name=q]", "Enter")
        page.wait_for_url("**/search?q=zebracorn")
        assert page.locator("table.tickets").inner_text().count("Plain question") == 1
        # The erasure of "Erase and export a person" (as `postdesk privacy erase`) takes their words out of the index
        eraser = postdesk.app.eraser()
        eraser.erase(eraser.person("carl@example.org"), "delete", "tester")
        with postdesk.app.db.read() as session:
            assert search.mentioning(session, "zebracorn") == []
        page.reload()
        assert "No message holds all of these words." in page.content()
    finally:
        server.stop()
        canary.close()
