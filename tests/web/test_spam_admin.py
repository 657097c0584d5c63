"""The admins' spam filter page: figures and server-drawn SVG charts of the active version, a
retrain that runs in the background while the page follows it, activating and rolling back
versions, the allow and block lists, the agents' recent decisions; every action audited, and
nothing of it reachable by an agent."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from classifier import versions
from models import AuditEvent, SenderRule, SpamModelVersion
from retention.ledger import ErasureLedger
from spamhelp import deliver, mail, teach, ticket, verdict
from waiting import wait_for
from webhelp import browser, clock, csrf_of, db, make_agent, sign_in, web  # noqa: F401

PAGE = "/admin/spam"


@pytest.fixture
def admin(web, db, clock):
    client = browser(web)
    sign_in(client, make_agent(db, "boss@example.com", role="admin"), clock)
    return client


def _post(client, url: str, **fields):
    return client.post(url, data={"csrf": csrf_of(client.get(PAGE).text), **fields})


def _audit(postdesk, action: str) -> list[AuditEvent]:
    with postdesk.app.db.read() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _retrained(admin, note: str) -> str:
    """Start a retrain and follow the page as a browser would, until it names the version made."""
    started = _post(admin, PAGE + "/retrain", note=note)
    assert started.status_code == 303

    def finished() -> str | None:
        page = admin.get(PAGE).text
        return page if "now active" in page else None

    return wait_for(finished, 120, what="the retrain finishing")


def test_only_admins_reach_the_spam_page_and_its_actions(postdesk, web, db, clock, admin):
    agent = browser(web, address="198.51.100.9")
    sign_in(agent, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    token = csrf_of(agent.get("/queues/open").text)
    assert "/admin/spam" not in agent.get("/queues/open").text and "/admin/spam" in admin.get("/queues/open").text
    assert agent.get(PAGE).status_code == 404
    for action, fields in (
        (PAGE + "/retrain", {}),
        (PAGE + "/versions/1/activate", {}),
        (PAGE + "/rules", {"pattern": "x@example.net", "action": "block"}),
        (PAGE + "/rules/remove", {"pattern": "x@example.net"}),
    ):
        assert agent.post(action, data={"csrf": token, **fields}).status_code == 404, action
    assert browser(web).get(PAGE).status_code == 303  # signed out: to the sign-in page
    assert admin.post(PAGE + "/retrain", data={"csrf": "forged"}).status_code == 403
    with postdesk.app.db.read() as session:
        assert (
            session.scalar(select(SenderRule.pattern)) is None and session.scalar(select(SpamModelVersion.id)) is None
        )


def test_a_retrain_runs_in_the_background_and_the_page_draws_its_figures_and_charts(postdesk, admin):
    teach(postdesk.app)
    empty = admin.get(PAGE).text
    assert "No version yet" in empty and "12 ham and 12 spam" in empty and "<svg" not in empty

    page = _retrained(admin, "first from the web")
    assert "Version 1</strong>" in page and "first from the web" in page and "False positives" in page
    roc = re.search(r'<svg class="chart roc".*?</svg>', page, re.S)[0]
    points = re.search(r'<polyline class="curve" points="([^"]+)"', roc)[1].split()
    assert len(points) >= 2 and points[0] == "44.00,268.00" and points[-1] == "300.00,12.00"  # (0, 0) to (1, 1)
    histogram = re.search(r'<svg class="chart histogram".*?</svg>', page, re.S)[0]
    bars = re.findall(r'<rect class="bar bar-(ham|spam)"[^>]*><title>(\d+) (?:ham|spam) scored', histogram)
    assert sum(int(n) for kind, n in bars if kind == "ham") == 12
    assert sum(int(n) for kind, n in bars if kind == "spam") == 12
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/keys.js" defer>']  # no charting script
    assert [e.details for e in _audit(postdesk, "spam-retrain")] == [{"version": 1}]
    assert _audit(postdesk, "spam-retrain")[0].actor.startswith("agent:")


def test_a_running_retrain_is_followed_by_a_reloading_page_and_a_second_one_waits(postdesk, admin, web, monkeypatch):
    import threading

    teach(postdesk.app)
    gate, entered = threading.Event(), threading.Event()
    real = versions.evaluate_examples

    def held(*args, **kw):
        entered.set()
        assert gate.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(versions, "evaluate_examples", held)
    try:
        assert _post(admin, PAGE + "/retrain").status_code == 303
        assert entered.wait(30)
        page = admin.get(PAGE)
        assert (
            page.headers["refresh"] == "2; url=/admin/spam"
            and "<progress" in page.text
            and "cross-validating 24" in page.text
        )
        assert admin.get("/queues/open").status_code == 200  # the server answers meanwhile
        again = _post(admin, PAGE + "/retrain")
        assert again.status_code == 409 and "A retrain is running already" in again.text
    finally:
        gate.set()
    wait_for(lambda: "now active" in admin.get(PAGE).text, 120, what="the retrain finishing")
    assert "refresh" not in admin.get(PAGE).headers


def test_a_failed_retrain_says_so_and_can_be_started_again(postdesk, admin, monkeypatch):
    def broken(*args, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(versions, "retrain_in_steps", broken)
    assert _post(admin, PAGE + "/retrain").status_code == 303
    wait_for(
        lambda: "The retrain stopped: the retrain failed (the server log says why)." in admin.get(PAGE).text,
        30,
        what="the failure shown",
    )
    assert "disk full" not in admin.get(PAGE).text and "Retrain now" in admin.get(PAGE).text
    assert _audit(postdesk, "spam-retrain") == []


def test_an_admin_rolls_back_to_an_older_version_and_forward_again(postdesk, admin):
    teach(postdesk.app)
    _retrained(admin, "one")
    _retrained(admin, "two")
    assert "Roll back to 1" in admin.get(PAGE).text
    response = _post(admin, PAGE + "/versions/1/activate")
    assert response.status_code == 303
    page = admin.get(response.headers["location"]).text
    assert "Version 1 is active." in page and "Version 1</strong>" in page and "Activate" in page
    with postdesk.app.db.read() as session:
        assert [v.id for v in versions.versions(session) if v.active] == [1]
    assert _post(admin, PAGE + "/versions/2/activate").status_code == 303
    assert _post(admin, PAGE + "/versions/99/activate").status_code == 404
    assert [e.details for e in _audit(postdesk, "spam-activate")] == [{"version": 1}, {"version": 2}]


def test_the_allow_and_block_lists_take_valid_entries_refuse_others_clearly_and_reach_the_runner(postdesk, admin):
    teach(postdesk.app)
    response = _post(admin, PAGE + "/rules", pattern="  Promo@Deals.Example.NET ", action="block")
    assert response.status_code == 303
    page = admin.get(response.headers["location"]).text
    assert "<code>promo@deals.example.net</code></td><td>block" in page and "The rule is saved." in page
    assert _post(admin, PAGE + "/rules", pattern="@example.org", action="allow").status_code == 303

    for pattern, action in (("not an address", "block"), ("a@@b.com", "allow"), ("", "block"), ("x@-y.com", "block")):
        refused = _post(admin, PAGE + "/rules", pattern=pattern, action=action)
        assert refused.status_code == 400 and "Give an address (name@example.com) or a domain" in refused.text
    refused = _post(admin, PAGE + "/rules", pattern="example.com", action="maybe")
    assert refused.status_code == 400 and "Choose allow or block." in refused.text

    blocked = deliver(postdesk, mail(5, "ham", sender="promo@deals.example.net"))
    assert (verdict(postdesk, blocked).reason, ticket(postdesk, blocked).queue) == ("block-list", "spam")

    assert _post(admin, PAGE + "/rules/remove", pattern="promo@deals.example.net").status_code == 303
    assert "promo@deals.example.net" not in admin.get(PAGE).text
    absent = _post(admin, PAGE + "/rules/remove", pattern="promo@deals.example.net")
    assert "That rule was not listed." in admin.get(absent.headers["location"]).text
    assert _post(admin, PAGE + "/rules/remove", pattern="no such thing").status_code == 400

    hmac = ErasureLedger(postdesk.settings.erasure_ledger_path).hmac
    events = [
        (e.action, e.subject_hmac, e.details)
        for e in _audit(postdesk, "spam-block") + _audit(postdesk, "spam-allow") + _audit(postdesk, "spam-rule-removed")
    ]
    assert events == [
        ("spam-block", hmac("promo@deals.example.net"), {"kind": "address"}),
        ("spam-allow", hmac("example.org"), {"kind": "domain"}),
        ("spam-rule-removed", hmac("promo@deals.example.net"), {"kind": "address"}),
    ]
    with postdesk.app.db.read() as session:  # the address is in no audit record
        assert not [e for e in session.scalars(select(AuditEvent)) if "deals" in f"{e.actor}{e.details}"]


def test_the_page_lists_the_agents_recent_decisions_without_bodies(postdesk, web, db, clock, admin):
    message = deliver(postdesk, mail(7, "ham", body="the secret body text xyzzy", subject="Refund please"))
    sam = browser(web, address="198.51.100.9")
    sign_in(sam, make_agent(db, "sam@example.com", departments=["Support"]), clock)
    page = f"/tickets/{ticket(postdesk, message).id}"
    sam.post(f"/messages/{message}/mark", data={"csrf": csrf_of(sam.get(page).text), "label": "spam"})
    decisions = re.search(r'<section class="card" id="decisions">.*?</section>', admin.get(PAGE).text, re.S)[0]
    assert "Sam" in decisions and "spam" in decisions and f'href="{page}#m{message}"' in decisions
    assert "Refund please" in decisions and "xyzzy" not in decisions
