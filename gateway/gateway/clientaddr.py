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


# Addresses judged are remembered (the same proxies and clients come back call after call);
# past this many the memory starts afresh.
_KNOWN_MAX = 10_000


class TrustedProxies:
    """The networks whose X-Forwarded-For is believed (`Settings.trusted_proxies`)."""

    __slots__ = ("_known", "networks")

    def __init__(self, networks: Iterable[IPNetwork | str] = ()) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n) if isinstance(n, str) else n for n in networks
        )
        self._known: dict[str, tuple[str | None, bool]] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def judge(self, text: str) -> tuple[str | None, bool]:
        """(the address written in `text`, normalised, or None when it is none; whether it
        is one of the trusted proxies)."""
        known = self._known.get(text)
        if known is None:
            address = parse_address(text)
            if address is None:
                known = (None, False)
            else:
                known = (str(address), any(address in n for n in self.networks))
            if len(self._known) >= _KNOWN_MAX:
                self._known.clear()
            self._known[text] = known
        return known


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


def _trusted_peer(scope: Any, trusted: TrustedProxies) -> str | None:
    """The peer's address when it is a trusted proxy, else None."""
    client = scope.get("client")
    if not client or not trusted:
        return None
    address, is_proxy = trusted.judge(client[0])
    return address if is_proxy else None


def client_address(scope: Any, trusted: TrustedProxies) -> str | None:
    """The client's address, or None when the server knows no peer (a Unix socket)."""
    client = scope.get("client")
    if not client:
        return None
    if not trusted:
        return str(client[0])
    found, is_proxy = trusted.judge(client[0])
    if found is None or not is_proxy:
        return found or str(client[0])
    for hop in reversed(_header(scope, _FORWARDED_FOR)):
        address, is_proxy = trusted.judge(hop)
        if address is None:
            break
        found = address
        if not is_proxy:
            break
    return found


def client_scheme(scope: Any, trusted: TrustedProxies) -> str:
    """`https` or `http` as the client spoke it: X-Forwarded-Proto (its last entry, the one
    the nearest proxy wrote) when the peer is a trusted proxy, else the connection's own."""
    scheme: str = scope.get("scheme", "http")
    if _trusted_peer(scope, trusted) is not None:
        entries = _header(scope, _FORWARDED_PROTO)
        proto = entries[-1].strip().lower() if entries else ""
        if proto in _SCHEMES:
            return proto
    return scheme
