"""Signing in to the web view, through its forms: two factors, one-time codes, throttling,
sessions that rotate and expire, cookies, CSRF, and client addresses behind proxies."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest

from models import Agent
from postdesk.accounts import users
from postdesk.web.app import create_app
from postdesk.web.site import SESSION_COOKIE
from webhelp import PASSWORD, browser, clock, db, make_agent, post_form, sign_in, web  # noqa: F401


def test_an_agent_signs_in_with_password_and_totp_code_and_sees_the_queues(web, db, clock):
    ann = make_agent(db, "ann@example.com", departments=["Support"])
    client = browser(web)
    assert client.get("/queues/open").headers["location"] == "/signin"
    response = post_form(client, "/signin", email="Ann@Example.com", password=PASSWORD)
    assert response.headers["location"] == "/signin/code"
    assert client.get("/queues/open").headers["location"] == "/signin/code"  # half signed in: nothing else
    response = post_form(client, "/signin/code", code=ann.code(clock))
    assert response.headers["location"] == "/"
    page = client.get("/queues/open")
    assert page.status_code == 200 and "<h1>Open</h1>" in page.text and "Sign out" in page.text


def test_a_wrong_password_or_unknown_account_gets_the_same_answer(web, db):
    make_agent(db, "ann@example.com")
    client = browser(web)
    wrong = post_form(client, "/signin", email="ann@example.com", password="not it at all")
    unknown = post_form(client, "/signin", email="nobody@example.com", password="not it at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text


def test_a_totp_code_is_accepted_once_only(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    first = browser(web)
    sign_in(first, ann, clock)
    second = browser(web)
    post_form(second, "/signin", email=ann.email, password=PASSWORD)
    replay = post_form(second, "/signin/code", code=ann.code(clock))
    assert replay.status_code == 401 and "not right" in replay.text
    older = post_form(second, "/signin/code", code=ann.code(clock, steps=-1))
    assert older.status_code == 401
    assert post_form(second, "/signin/code", code=ann.code(clock, steps=1)).headers["location"] == "/"


def test_a_recovery_code_signs_in_once(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    sign_in(client, ann, clock)
    codes = re.findall(
        r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", post_form(client, "/account", "/account/recovery-codes").text
    )
    assert len(codes) == 10
    for attempt, expected in ((codes[3], 303), (codes[3], 401)):
        other = browser(web, address="198.51.100.8")
        post_form(other, "/signin", email=ann.email, password=PASSWORD)
        assert post_form(other, "/signin/code", code=attempt.upper()).status_code == expected


def test_a_new_owner_changes_the_one_time_password_then_enrols_a_second_factor(web, db, clock):
    with db.write() as session:
        one_time = users.create(session, "olga@example.com", role="owner").password
    client = browser(web)
    response = post_form(client, "/signin", email="olga@example.com", password=one_time)
    assert response.headers["location"] == "/signin/password"
    short = post_form(client, "/signin/password", new="short", repeat="short")
    assert short.status_code == 400 and "12 characters" in short.text
    response = post_form(client, "/signin/password", new="a new long passphrase", repeat="a new long passphrase")
    assert response.headers["location"] == "/signin/enrol"  # owners must use two factors
    page = client.get("/signin/enrol")
    assert "<svg" in page.text and "<script" not in page.text
    secret = re.search(r'class="secret">([A-Z2-7]+)<', page.text)[1]
    done = client.post(
        "/signin/enrol",
        data={"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text)[1], "code": pyotp.TOTP(secret).at(clock())},
    )
    assert done.status_code == 200 and len(re.findall(r"<code>[a-z0-9]{5}-[a-z0-9]{5}</code>", done.text)) == 10
    assert client.get("/queues/open").status_code == 200
    with db.read() as session:
        olga = session.get(Agent, users.agent_by_email(session, "olga@example.com").id)
        assert olga.totp_secret == secret and not olga.must_change_password


def test_an_admin_can_require_two_factors_for_agents_and_an_agent_cannot_open_that_page(web, db, clock):
    boss = make_agent(db, "boss@example.com", role="admin")
    bob = make_agent(db, "bob@example.com", two_factor=False)
    bob_client = browser(web, address="198.51.100.9")
    assert sign_in(bob_client, bob, clock).headers["location"] == "/"  # 2FA optional for agents by default
    assert bob_client.get("/admin/security").status_code == 404
    admin = browser(web)
    sign_in(admin, boss, clock)
    saved = post_form(admin, "/admin/security", require_owner="on", require_admin="on", require_agent="on")
    assert saved.status_code == 303
    again = browser(web, address="198.51.100.10")
    assert post_form(again, "/signin", email=bob.email, password=PASSWORD).headers["location"] == "/signin/enrol"


def test_a_deactivated_agent_is_signed_out_at_once_and_cannot_sign_in(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    sign_in(client, ann, clock)
    with db.write() as session:
        users.deactivate(session, ann.email)
    assert client.get("/queues/open").headers["location"] == "/signin"
    assert post_form(browser(web), "/signin", email=ann.email, password=PASSWORD).status_code == 401


def test_throttling_after_five_failures_doubles_the_wait_up_to_thirty_seconds(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    attacker = browser(web, address="203.0.113.66")

    def attempt():
        return post_form(attacker, "/signin", email=ann.email, password="guess")

    assert [attempt().status_code for _ in range(5)] == [401] * 5
    waits = []
    for _ in range(8):
        refused = attempt()
        assert refused.status_code == 429 and "Too many failed attempts" in refused.text
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1] - 0.5)
        assert attempt().status_code == 429  # not yet
        clock.advance(0.5)
        assert attempt().status_code == 401  # its turn: checked, and wrong
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    # The agent, from their own address, signs in meanwhile.
    assert sign_in(browser(web, address="198.51.100.7"), ann, clock).headers["location"] == "/"
    clock.advance(15 * 60 + 1)  # the window has passed: free again
    assert attempt().status_code == 401


def test_one_address_trying_many_accounts_is_throttled_too(web, db):
    client = browser(web, address="203.0.113.66")
    for n in range(5):
        assert post_form(client, "/signin", email=f"user{n}@example.com", password="guess").status_code == 401
    assert post_form(client, "/signin", email="someone@example.com", password="guess").status_code == 429


def test_wrong_second_factor_codes_are_throttled_like_passwords(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    post_form(client, "/signin", email=ann.email, password=PASSWORD)
    assert [post_form(client, "/signin/code", code="000000").status_code for _ in range(6)] == [401] * 5 + [429]


def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(web, db):
    client = browser(web, address="203.0.113.66")
    for n in range(5):
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)[1]
        client.post(
            "/signin",
            data={"csrf": token, "email": "x@example.com", "password": "guess"},
            headers={"X-Forwarded-For": f"192.0.2.{n}"},
        )
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)[1]
    refused = client.post(
        "/signin",
        data={"csrf": token, "email": "x@example.com", "password": "guess"},
        headers={"X-Forwarded-For": "192.0.2.200"},
    )
    assert refused.status_code == 429  # all five counted against the real peer


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(settings, db, clock):
    app = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}), db, now=clock)
    proxy = browser(app, address="10.1.2.3")

    def attempt(client_address: str):
        token = re.search(r'name="csrf" value="([^"]+)"', proxy.get("/signin").text)[1]
        return proxy.post(
            "/signin",
            data={"csrf": token, "email": "x@example.com", "password": "guess"},
            headers={"X-Forwarded-For": f"1.2.3.4, {client_address}"},
        ).status_code

    assert [attempt("192.0.2.10") for _ in range(6)] == [401] * 5 + [429]
    assert attempt("192.0.2.11") == 401  # another client behind the same proxy


def test_each_step_of_signing_in_starts_a_new_session_and_the_old_one_is_void(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    post_form(client, "/signin", email=ann.email, password=PASSWORD)
    half = client.cookies[SESSION_COOKIE]
    post_form(client, "/signin/code", code=ann.code(clock))
    full = client.cookies[SESSION_COOKIE]
    assert half != full
    stale = browser(web, cookies={SESSION_COOKIE: half})
    assert stale.get("/queues/open").headers["location"] == "/signin"
    assert stale.get("/signin/code").headers["location"] == "/signin"


def test_signing_out_ends_the_session_on_the_server(web, db, clock):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    sign_in(client, ann, clock)
    token = client.cookies[SESSION_COOKIE]
    assert post_form(client, "/queues/open", "/signout").headers["location"] == "/signin"
    copy = browser(web, cookies={SESSION_COOKIE: token})  # a copy of the cookie kept elsewhere
    assert copy.get("/queues/open").headers["location"] == "/signin"


def test_a_session_ends_after_the_idle_time_and_after_its_lifetime(web, db, clock, settings):
    ann = make_agent(db, "ann@example.com")
    client = browser(web)
    sign_in(client, ann, clock)
    idle = settings.web_session_idle_minutes * 60
    clock.advance(idle - 30)
    assert client.get("/queues/open").status_code == 200  # and touched
    clock.advance(idle - 30)
    assert client.get("/queues/open").status_code == 200
    clock.advance(idle + 1)
    assert client.get("/queues/open").headers["location"] == "/signin"
    sign_in(client, ann, clock, steps=1)
    began = clock()
    while client.get("/queues/open").status_code == 200:  # busy all day, a page every half hour
        clock.advance(30 * 60)
    assert clock() - began > timedelta(hours=settings.web_session_max_hours) >= clock() - began - timedelta(minutes=30)
    assert client.get("/queues/open").headers["location"] == "/signin"


@pytest.mark.parametrize("https", [False, True])
def test_session_cookies_are_http_only_same_site_lax_and_secure_over_https(web, db, clock, https):
    ann = make_agent(db, "ann@example.com")
    client = browser(web, https=https)
    response = sign_in(client, ann, clock)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ("Secure" in cookie) == https


def test_every_form_needs_its_csrf_token(web, db, clock):
    ann = make_agent(db, "ann@example.com", role="admin")
    client = browser(web)
    client.get("/signin")
    assert client.post("/signin", data={"email": ann.email, "password": PASSWORD}).status_code == 403
    assert client.post("/signin", data={"email": ann.email, "password": PASSWORD, "csrf": "x"}).status_code == 403
    sign_in(client, ann, clock)
    for action, fields in (
        ("/signout", {}),
        ("/account/recovery-codes", {}),
        ("/account/password", {"current": PASSWORD, "new": "x" * 12, "repeat": "x" * 12}),
        ("/admin/security", {"require_agent": "on"}),
    ):
        assert client.post(action, data=fields).status_code == 403, action
        assert client.post(action, data={**fields, "csrf": "forged"}).status_code == 403, action
    assert client.get("/queues/open").status_code == 200  # still signed in: nothing happened
