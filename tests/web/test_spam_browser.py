"""Spam work in Debian's Chromium: an admin marks a ticket spam from its page and another from the
queue and sees both move to the Spam queue, retrains from the spam page (which follows the job by
reloading itself), and reads the server-drawn SVG charts, also on a phone's width. The page's
screenshot goes to test-artifacts/."""

from __future__ import annotations


from postdesk.web.server import WebServer
from spamhelp import deliver, mail, teach, ticket
from test_browser import ARTIFACTS, browser_page, pytestmark  # noqa: F401
from webhelp import db, make_agent, sign_in_browser  # noqa: F401


def test_an_admin_marks_spam_sees_the_tickets_move_and_reads_the_spam_page_charts(postdesk, db, browser_page):
    teach(postdesk.app)
    first = deliver(postdesk, mail(1, "ham", subject="Cheap watches today"))
    second = deliver(postdesk, mail(2, "ham", subject="Casino bonus inside"))
    deliver(postdesk, mail(3, "ham", subject="My printer is broken"))
    server = WebServer(postdesk.settings.model_copy(update={"web_port": 0}), postdesk.app.db)
    url = server.start()
    page = browser_page
    try:
        sign_in_browser(page, url, make_agent(db, "boss@example.com", role="admin"))
        page.click("text=Cheap watches today")
        page.wait_for_url(f"**/tickets/{ticket(postdesk, first).id}*")
        page.click(f"#m{first} form.mark button[value=spam]")
        page.wait_for_selector("text=Marked spam.")
        assert page.locator(".facts").inner_text().count("spam") == 1  # the ticket's queue

        page.goto(url + "queues/open")
        assert "Cheap watches today" not in page.locator("table.tickets").inner_text()
        page.check(f"input[name=ticket][value='{ticket(postdesk, second).id}']")
        page.click("form.selection button[value=spam]")
        page.wait_for_selector("text=1 ticket marked spam.")
        queue = page.locator("table.tickets").inner_text()
        assert "Casino bonus inside" not in queue and "My printer is broken" in queue
        page.click("nav.queues >> text=Spam")
        page.wait_for_url("**/queues/spam")
        spam = page.locator("table.tickets").inner_text()
        assert "Cheap watches today" in spam and "Casino bonus inside" in spam

        page.click("text=Spam filter")
        page.wait_for_url("**/admin/spam")
        page.click("text=Retrain now")
        page.wait_for_selector("text=now active", timeout=120_000)  # the page reloads itself meanwhile
        curve = page.locator("svg.chart.roc polyline.curve")
        assert curve.is_visible() and curve.bounding_box()["width"] > 100
        assert page.locator("svg.chart.histogram rect.bar").count() >= 2
        assert page.locator("#decisions tbody tr").count() == 2
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "spam-page.png"), full_page=True)

        page.set_viewport_size({"width": 375, "height": 800})
        for path in ("admin/spam", "queues/spam"):
            page.goto(url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, path  # no sideways scrolling
    finally:
        server.stop()
