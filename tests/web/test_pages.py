"""The pages an agent works with, on mail that arrived over SMTP: department isolation everywhere,
hostile HTML made harmless, attachments served as downloads, queues with counts and pages."""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from models import Attachment, Message, Ticket
from webhelp import browser, clock, db, make_agent, sign_in, web  # noqa: F401

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
CANARY_URL = "http://127.0.0.1:9/canary"
HOSTILE = f"""<html><head><style>body {{ background: url({CANARY_URL}/style.png) }}</style>
<script>window.pwned = 1</script></head>
<body onload="window.pwned = 1">
<p style="color: red; background-image: url({CANARY_URL}/inline-style.png)">Hello <b>there</b></p>
<a href="javascript:window.pwned=1">click me</a> <a href="https://example.org/help">help</a>
<img src="{CANARY_URL}/tracker.gif" onerror="window.pwned = 1" alt="tracker">
<img src="cid:logo@example.org" alt="logo">
<svg onload="window.pwned = 1"><image href="{CANARY_URL}/svg.png"/></svg>
<iframe src="{CANARY_URL}/frame"></iframe><form action="{CANARY_URL}/form"><input name="q"></form>
</body></html>"""


def message(
    subject: str,
    body: str,
    *,
    to: str = "support@example.com",
    html: str | None = None,
    files: list[tuple[str, bytes, str]] = (),
    inline: list[tuple[str, bytes]] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Carla Customer <carla@example.org>", to, subject
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_payload()[1]
        for cid, data in inline:
            html_part.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>")
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def deliver(postdesk, raw: bytes, to: str = "support@example.com") -> int:
    """Send over SMTP; the id of the stored message."""
    postdesk.send(raw, to=to)
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1))


def ticket_of(postdesk, message_id: int) -> int:
    with postdesk.app.db.read() as session:
        return session.get(Message, message_id).ticket_id


def attachments_of(postdesk, message_id: int) -> dict[str, int]:
    with postdesk.app.db.read() as session:
        return {
            a.filename: a.id for a in session.scalars(select(Attachment).where(Attachment.message_id == message_id))
        }


def test_an_agent_sees_only_their_departments_in_queues_tickets_bodies_attachments_and_search(postdesk, web, db, clock):
    ours = deliver(
        postdesk,
        message("Printer jammed", "xylophone toner", html="<p>xylophone</p>", files=[("photo.png", PNG, "image/png")]),
    )
    theirs = deliver(
        postdesk,
        message(
            "Invoice disputed",
            "xylophone refund",
            to="billing@example.com",
            html="<p>xylophone</p>",
            files=[("ledger.png", PNG, "image/png")],
        ),
        to="billing@example.com",
    )
    sam = make_agent(db, "sam@example.com", departments=["Support"])
    boss = make_agent(db, "boss@example.com", role="admin")
    nobody = make_agent(db, "new@example.com")
    agent, admin, unassigned = browser(web), browser(web, address="198.51.100.8"), browser(web, address="198.51.100.9")
    sign_in(agent, sam, clock)
    sign_in(admin, boss, clock)
    sign_in(unassigned, nobody, clock)

    queue = agent.get("/queues/open").text
    assert "Printer jammed" in queue and "Invoice disputed" not in queue
    assert "Invoice disputed" in admin.get("/queues/open").text
    assert "Printer jammed" not in unassigned.get("/queues/open").text
    their_ticket, their_file = ticket_of(postdesk, theirs), attachments_of(postdesk, theirs)["ledger.png"]
    for url in (f"/tickets/{their_ticket}", f"/messages/{theirs}/body", f"/attachments/{their_file}"):
        assert agent.get(url).status_code == 404, url
        assert admin.get(url).status_code == 200, url
    assert agent.get("/tickets/99999").status_code == 404  # the same answer as for someone else's
    assert agent.get(f"/tickets/{their_ticket}").text == agent.get("/tickets/99999").text
    assert agent.get(f"/tickets/{ticket_of(postdesk, ours)}").status_code == 200
    found = agent.get("/search", params={"q": "xylophone"}).text
    assert "Printer jammed" in found and "Invoice disputed" not in found
    assert "Invoice disputed" in admin.get("/search", params={"q": "xylophone"}).text
    assert "Printer jammed" not in unassigned.get("/search", params={"q": "xylophone"}).text


def test_hostile_html_is_sanitised_framed_and_its_remote_images_wait_for_the_agent(postdesk, web, db, clock):
    mid = deliver(postdesk, message("Look at this", "plain version", html=HOSTILE, inline=[("logo@example.org", PNG)]))
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    page = client.get(f"/tickets/{ticket_of(postdesk, mid)}")
    frame = re.search(r"<iframe [^>]*>", page.text)[0]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame and "allow-scripts" not in frame
    assert "allow-same-origin" not in frame and f'src="/messages/{mid}/body"' in frame
    assert "1 remote image blocked" in page.text and "Load images" in page.text
    assert "pwned" not in page.text and CANARY_URL not in page.text

    body = client.get(f"/messages/{mid}/body")
    policy = body.headers["content-security-policy"]
    assert "img-src data:;" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert "sandbox" in policy and body.headers["x-content-type-options"] == "nosniff"
    for gone in (
        "<script",
        "pwned",
        "onload",
        "onerror",
        "javascript:",
        "url(",
        CANARY_URL,
        "<iframe",
        "<form",
        "<svg",
    ):
        assert gone not in body.text, gone
    assert "Hello <b>there</b>" in body.text and 'href="https://example.org/help"' in body.text
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in body.text  # cid: from this message

    loaded = client.get(f"/tickets/{ticket_of(postdesk, mid)}", params={"images": mid})
    assert f'src="/messages/{mid}/body?images=1"' in loaded.text and "Load images" not in loaded.text
    with_images = client.get(f"/messages/{mid}/body", params={"images": "1"})
    assert f'src="{CANARY_URL}/tracker.gif"' in with_images.text
    assert "img-src data: http: https:" in with_images.headers["content-security-policy"]
    assert "url(" not in with_images.text and "pwned" not in with_images.text


def test_cid_images_come_only_from_the_same_message(postdesk, web, db, clock):
    deliver(
        postdesk,
        message("Has the logo", "x", html='<img src="cid:logo@example.org">', inline=[("logo@example.org", PNG)]),
    )
    other = deliver(postdesk, message("Borrows it", "y", html='<p>hi</p><img src="cid:logo@example.org">'))
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    body = client.get(f"/messages/{other}/body").text
    assert "data:image" not in body and "<img>" in body


def test_attachments_download_with_a_safe_type_only_and_never_render(postdesk, web, db, clock):
    mid = deliver(
        postdesk,
        message(
            "Files",
            "see attached",
            files=[
                ("photo.png", PNG, "image/png"),
                ("page.html", b"<script>alert(1)</script>", "text/html"),
                ("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(64), "application/octet-stream"),
                ('r\u00e9sum\u00e9 "final".pdf', b"%PDF-1.4\n%%EOF\n", "application/pdf"),
            ],
        ),
    )
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    ids = attachments_of(postdesk, mid)
    expected = {
        "photo.png": "image/png",
        "page.html": "application/octet-stream",
        "setup.exe": "application/octet-stream",
        'r\u00e9sum\u00e9 "final".pdf': "application/pdf",
    }
    for name, kind in expected.items():
        response = client.get(f"/attachments/{ids[name]}")
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == kind, name
        assert response.headers["content-disposition"].startswith("attachment; ")
        assert response.headers["x-content-type-options"] == "nosniff"
    resume = ids['r\u00e9sum\u00e9 "final".pdf']
    disposition = client.get(f"/attachments/{resume}").headers["content-disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in disposition and '"final"' not in disposition
    page = client.get(f"/tickets/{ticket_of(postdesk, mid)}").text
    assert "photo.png" in page and "image/png" in page


def test_the_queue_page_counts_its_tickets_and_pages_through_them(postdesk, web, db, clock, monkeypatch):
    from tickets import queues

    monkeypatch.setattr(queues, "PAGE", 2)
    for n in range(5):
        deliver(postdesk, message(f"Question {n}", "hello"))
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    page = client.get("/queues/open")
    assert re.search(r'Open\s*<span class="count">5</span>', page.text)
    seen, pages = [], 1
    while True:
        seen += re.findall(r">(Question \d)</a>", page.text)
        following = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if not following:
            break
        page, pages = client.get(following[1].replace("&amp;", "&")), pages + 1
        assert 'rel="prev"' in page.text
    assert seen == [f"Question {n}" for n in (4, 3, 2, 1, 0)] and pages == 3
    oldest_first = client.get("/queues/open", params={"order": "asc"}).text
    assert re.findall(r">(Question \d)</a>", oldest_first) == ["Question 0", "Question 1"]


def test_unknown_queues_and_ids_are_404_pages(postdesk, web, db, clock):
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", role="admin"), clock)
    for url in ("/queues/nope", "/tickets/abc", "/attachments/0", "/messages/123456/body"):
        response = client.get(url)
        assert response.status_code == 404 and "Not found" in response.text, url


@pytest.mark.parametrize("path,kind", [("/static/style.css", "text/css"), ("/static/keys.js", "text/javascript")])
def test_assets_are_served_by_postdesk_itself(web, path, kind):
    response = browser(web).get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith(kind)


def test_the_pages_load_nothing_from_elsewhere(postdesk, web, db, clock):
    client = browser(web)
    sign_in(client, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    deliver(postdesk, message("Hi", "text"))
    with postdesk.app.db.read() as session:
        ticket_id = session.scalar(select(Ticket.id))
    for url in ("/signin", "/queues/open", f"/tickets/{ticket_id}", "/search?q=hi", "/account"):
        html = client.get(url).text
        assert not re.search(r'(src|href)="(https?:)?//', html), url
        # one script of our own (keyboard shortcuts, presence), no inline script
        assert re.findall(r"<script[^>]*>", html) in ([], ['<script src="/static/keys.js" defer>']), url
