"""Where a webhook may be sent (OWASP API7, server-side request forgery).

A subscription's URL is refused when its host is, or resolves to, an address that is not
public: loopback, private, link-local, shared (CGNAT), multicast, reserved, unspecified, a
cloud metadata address, or an IPv6 address that carries one of those (IPv4-mapped, 6to4,
Teredo, NAT64), unless the address is in the configured allowlist. The check runs when the
subscription is created or changed and again on every delivery: the sender's resolver is
`GuardedResolver`, so the addresses checked are the very ones the connection is made to and
a name that resolves elsewhere later (DNS rebinding) is refused then. An IP literal never
reaches a resolver; `AddressPolicy.check_host` checks it before the request.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Instance metadata services (AWS, GCP, Azure, OpenStack; ECS tasks; AWS over IPv6; Alibaba).
METADATA = frozenset(
    ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = IPv6Network("64:ff9b::/96")
MAX_URL_LENGTH = 2048


class AddressRefused(OSError):
    """A webhook URL that leads to an address it may not (an OSError, so that the HTTP client
    reports it as the connection failure it is)."""


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: Address) -> str | None:
    """What makes the address internal, or None for a public one."""
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if not address.is_global:
        return "not a public address"
    return None


class AddressPolicy:
    def __init__(self, allowed: Sequence[Network] = (), *, allow_http: bool = False) -> None:
        self.allowed = tuple(allowed)
        self.allow_http = allow_http
        self._resolver: ThreadedResolver | None = None  # made in the running loop

    def _allowlisted(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.allowed)

    def refusal(self, address: Address) -> str | None:
        """Why a connection to `address` is refused, or None when it may be made."""
        if self._allowlisted(address):
            return None
        if isinstance(address, IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                inner = self.refusal(embedded)
                if inner is not None:
                    return f"{address} (carrying {inner})"
        kind = _kind(address)
        return None if kind is None else f"{address} ({kind})"

    def check(self, host: str, address: str) -> None:
        reason = self.refusal(ip_address(address.split("%", 1)[0]))
        if reason is not None:
            raise AddressRefused(reason if host == address else f"{host} resolves to {reason}")

    def check_host(self, host: str) -> bool:
        """Check an IP literal (True when `host` is one); a name is left to the resolver."""
        try:
            literal = ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        self.check(host, str(literal))
        return True

    async def resolve(self, host: str, port: int = 0) -> list[ResolveResult]:
        """Every address of `host`, each checked; AddressRefused if any is refused, OSError
        when the name does not resolve."""
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        found = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
        for entry in found:
            self.check(host, entry["host"])
        return found

    def url_problem(self, url: str) -> str | None:
        """What is wrong with the URL's form (scheme, host, credentials), or None."""
        if len(url) > MAX_URL_LENGTH:
            return f"longer than {MAX_URL_LENGTH} characters"
        try:
            parsed = URL(url)
        except ValueError:
            return "not a URL"
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in schemes:
            return "must be an https URL" if not self.allow_http else "must be an http(s) URL"
        if not parsed.host:
            return "has no host"
        if parsed.user is not None or parsed.password is not None:
            return "must not carry credentials (the signature authenticates the gateway)"
        return None

    async def check_url(self, url: str) -> str | None:
        """Why `url` may not be subscribed (its form, or where its host leads), or None."""
        problem = self.url_problem(url)
        if problem is not None:
            return problem
        parsed = URL(url)
        host = parsed.raw_host or ""
        try:
            if not self.check_host(host):
                await self.resolve(host, parsed.port or 0)
        except AddressRefused as exc:
            return f"{exc}: webhooks are never sent to internal addresses"
        except OSError as exc:
            return f"the host {host!r} does not resolve ({exc.strerror or exc})"
        return None


class GuardedResolver(AbstractResolver):
    """The sender's resolver: it resolves and checks, so the connection goes only to addresses
    that were checked, on every delivery (the sender keeps no DNS cache)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return await self.policy.resolve(host, port)

    async def close(self) -> None:
        """The policy's resolver is a thread pool's client: nothing to release."""
