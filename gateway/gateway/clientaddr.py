"""Who the client is: the TCP peer, or the address trusted proxies name in X-Forwarded-For.

One rule for everything that keys on a client address (identity's sign-in lock-outs and audit
trail, the edge's rate limit for anonymous callers, the X-Forwarded-For sent to services):

- The peer is believed about itself only. When it is not a trusted proxy
  (`GATEWAY_TRUSTED_PROXIES`, empty by default), its X-Forwarded-For is ignored: any caller can
  write that header.
- When it is one, X-Forwarded-For is read right to left (each proxy appends the address it saw)
  and the first hop that is not itself a trusted proxy is the client. Hops further left were
  written by that client and prove nothing. An entry that is not an IP address ends the walk:
  the last trusted hop is then the best that is known.

uvicorn's own proxy-headers rule trusts 127.0.0.1 by default and rewrites the peer before the
app sees it, so the gateway is served with `--no-proxy-headers` (`make run`, the image, the
tests' servers) and this module is the only place X-Forwarded-For is read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"
_SCHEMES = frozenset({"http", "https"})


class TrustedProxies:
    """The networks whose X-Forwarded-For is believed (`Settings.trusted_proxies`)."""

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[IPNetwork | str] = ()) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n) if isinstance(n, str) else n for n in networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


NO_PROXIES = TrustedProxies()


def parse_address(text: str) -> IPAddress | None:
    """An address as a peer or a proxy writes it: bare, `[v6]`, `[v6]:port` or `v4:port`;
    IPv4-mapped IPv6 addresses are their IPv4 address. None when it is not an address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _header(scope: Any, name: bytes) -> list[str]:
    """Every comma-separated entry of the header, over all its lines, in order."""
    entries: list[str] = []
    for key, value in scope["headers"]:
        if key == name:
            entries.extend(value.decode("latin-1").split(","))
    return entries


def _peer(scope: Any, trusted: TrustedProxies) -> tuple[str | None, IPAddress | None]:
    """(the peer as the server gave it, its address when it is a trusted proxy)."""
    client = scope.get("client")
    if not client:
        return None, None
    if not trusted:
        return client[0], None
    peer = parse_address(client[0])
    if peer is None or not trusted.trusts(peer):
        return client[0], None
    return client[0], peer


def client_address(scope: Any, trusted: TrustedProxies) -> str | None:
    """The client's address, or None when the server knows no peer (a Unix socket)."""
    raw, peer = _peer(scope, trusted)
    if peer is None:
        return raw
    found = peer
    for hop in reversed(_header(scope, _FORWARDED_FOR)):
        address = parse_address(hop)
        if address is None:
            break
        found = address
        if not trusted.trusts(address):
            break
    return str(found)


def client_scheme(scope: Any, trusted: TrustedProxies) -> str:
    """`https` or `http` as the client spoke it: X-Forwarded-Proto (its last entry, the one
    the nearest proxy wrote) when the peer is a trusted proxy, else the connection's own."""
    scheme: str = scope.get("scheme", "http")
    if _peer(scope, trusted)[1] is not None:
        entries = _header(scope, _FORWARDED_PROTO)
        proto = entries[-1].strip().lower() if entries else ""
        if proto in _SCHEMES:
            return proto
    return scheme
