"""Who is on the other end: the client's address and whether the request came over HTTPS.

X-Forwarded-For and X-Forwarded-Proto are believed only from a peer in POSTDESK_TRUSTED_PROXIES;
then the client is the rightmost address in X-Forwarded-For that is not itself a trusted proxy
(the ones to its left were written by the client and may be made up).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    peer = peer or "unknown"
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where the client should be: take the proxy's word for nothing
    return peer


def is_https(scheme: str, peer: str | None, forwarded_proto: str | None, trusted: tuple[Network, ...]) -> bool:
    if scheme == "https":
        return True
    return (
        forwarded_proto is not None
        and _trusted(peer or "", trusted)
        and forwarded_proto.split(",")[-1].strip().lower() == "https"
    )
