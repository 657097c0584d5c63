"""Reading the client's address and scheme from a request: X-Forwarded-* only from trusted proxies."""

from __future__ import annotations

import ipaddress

from hypothesis import given, strategies as st

from postdesk.web.client import client_address, is_https, networks

PROXIES = networks(["10.0.0.0/8", "::1"])


def test_the_rightmost_untrusted_hop_is_the_client():
    assert client_address("10.0.0.1", "203.0.113.9, 198.51.100.4", PROXIES) == "198.51.100.4"
    assert client_address("10.0.0.1", "203.0.113.9, 198.51.100.4, 10.2.3.4", PROXIES) == "198.51.100.4"
    assert client_address("::1", "2001:db8::7", PROXIES) == "2001:db8::7"


def test_forwarded_headers_from_anyone_else_are_ignored():
    assert client_address("192.0.2.1", "203.0.113.9", PROXIES) == "192.0.2.1"
    assert not is_https("http", "192.0.2.1", "https", PROXIES)
    assert is_https("http", "10.9.9.9", "https", PROXIES) and is_https("https", "192.0.2.1", None, PROXIES)


def test_garbage_where_the_client_should_be_falls_back_to_the_peer():
    assert client_address("10.0.0.1", "not-an-ip", PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", "", PROXIES) == "10.0.0.1"
    assert client_address(None, None, PROXIES) == "unknown"


@given(peer=st.one_of(st.ip_addresses().map(str), st.text(max_size=20)), header=st.text(max_size=200))
def test_any_header_gives_the_peer_or_a_real_address_and_never_fails(peer, header):
    found = client_address(peer, header, PROXIES)
    if found != (peer or "unknown"):
        ipaddress.ip_address(found)
        assert ipaddress.ip_address(peer) in PROXIES[0] or ipaddress.ip_address(peer) in PROXIES[1]
