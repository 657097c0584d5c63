"""The relay client against real aiosmtpd servers: STARTTLS with a login, implicit TLS, the
certificate checked against the CA in the settings, and each failure told as permanent or not."""

from __future__ import annotations

import ssl

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from ingest.relay import Relay, RelayError, send
from relay import TestRelay
from tls import make_ca

RAW = b"From: support@example.com\r\nTo: carla@example.org\r\nSubject: Hi\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n"


def _login(server, session, envelope, mechanism, data):
    return AuthResult(success=isinstance(data, LoginPassword) and (data.login, data.password) == (b"desk", b"s3cret"))


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def _server_context(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.server_cert, ca.server_key)
    return context


def test_starttls_with_a_login_delivers_and_a_wrong_password_or_an_unknown_ca_is_worth_another_try(ca):
    relay = TestRelay(
        tls_context=_server_context(ca), require_starttls=True, authenticator=_login, auth_require_tls=True
    )
    try:
        good = Relay("127.0.0.1", relay.port, "starttls", "desk", "s3cret", ca.ca_cert, timeout=10)
        assert send(good, "support@example.com", ["carla@example.org"], RAW) == {}
        assert relay.received[0].rcpt_tos == ["carla@example.org"]
        for bad in (
            Relay("127.0.0.1", relay.port, "starttls", "desk", "wrong", ca.ca_cert, timeout=10),
            Relay("127.0.0.1", relay.port, "starttls", "desk", "s3cret", None, timeout=10),
        ):
            with pytest.raises(RelayError) as refused:
                send(bad, "support@example.com", ["carla@example.org"], RAW)
            assert not refused.value.permanent
        assert len(relay.received) == 1
    finally:
        relay.stop()


def test_implicit_tls_delivers_and_a_5xx_to_the_data_is_permanent(ca):
    relay = TestRelay(ssl_context=_server_context(ca))
    try:
        config = Relay("127.0.0.1", relay.port, "tls", ca_file=ca.ca_cert, timeout=10)
        send(config, "support@example.com", ["carla@example.org"], RAW)
        relay.handler.answer = lambda _: "554 5.6.0 rejected"
        with pytest.raises(RelayError, match="554 5.6.0 rejected") as refused:
            send(config, "support@example.com", ["carla@example.org"], RAW)
        assert refused.value.permanent and len(relay.received) == 1
    finally:
        relay.stop()


def test_a_relay_that_is_not_there_is_worth_another_try():
    with pytest.raises(RelayError, match="cannot reach the relay") as refused:
        send(Relay("127.0.0.1", 9, "none", timeout=5), "support@example.com", ["carla@example.org"], RAW)
    assert not refused.value.permanent
