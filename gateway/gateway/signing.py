"""Internal tokens: minted with the gateway's Ed25519 key, cached per (principal, audience).

Services cache verified tokens by their string, so reusing one token for most of its life makes
both sides cheap: the gateway signs about once a minute per principal and service, and the
service checks the signature as rarely (a fresh token per call would cost both an Ed25519
operation and a JWT encode or decode on every forwarded call).

Why reuse is safe:
- The cache key is the whole `Principal` (subject, kind, role, team, visible teams, scopes,
  name, acting apps) and the audience, so a token only ever carries the facts of the call it
  is used for: a user moved to another team or given another role, a key with other scopes,
  is another key and gets its own token. Two principals never share one.
- Revocation is not the token's job: every call is authenticated first (the identity cache,
  dropped by NOTIFY on deactivation, logout, key revocation, team moves), and a refused caller
  never reaches the signer, so a cached token is never handed out for them again. What a
  token already sent can still do is what it could do before: live out its `exp` (at most
  `ttl_seconds`) at the one service it names.
- `jti` stays unique per minted token but no service reads it: there is no replay ledger (a
  verifier that recorded jtis could not cache by token, and an internal token is a bearer
  token on the services' network, like an OAuth access token, valid for many calls until
  it expires). Replay protection for writes is the `Idempotency-Key`, and tracing is the
  `x-request-id` header, sent beside the token on every call, never inside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servicekit.auth import Principal, generate_keypair, load_private_key, mint_internal_token
from servicekit.clock import Clock

log = logging.getLogger("gateway.signing")


def public_pem(key: Ed25519PrivateKey) -> str:
    """The public half, as services are given it (what delegated calls are verified with)."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class WallClock(Clock):
    """The gateway's wall clock (a `() -> float`, which tests hold) as the kit's `Clock`."""

    def __init__(self, read: Callable[[], float]) -> None:
        self.read = read

    def timestamp(self) -> float:
        return self.read()


def load_or_generate_key(pem: str) -> Ed25519PrivateKey:
    if pem.strip():
        return load_private_key(pem)
    private, _public = generate_keypair()
    log.warning(
        "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY is not set: signing internal tokens with an "
        "EPHEMERAL key that no service knows; every forwarded call will be refused (401) "
        "until the gateway gets the private key whose public half the services hold "
        "(INTERNAL_TOKEN_PUBLIC_KEY)"
    )
    return load_private_key(private)


class TokenSigner:
    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str,
        ttl_seconds: int = 60,
        refresh_margin_seconds: int = 15,
        cache_size: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if refresh_margin_seconds >= ttl_seconds:
            raise ValueError("the refresh margin must be shorter than the token's life")
        self._key = private_key
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.refresh_margin_seconds = refresh_margin_seconds
        # (principal, audience) -> (token, reuse until, the header line that carries it)
        self._cache: dict[tuple[Principal, str], tuple[str, float, bytes]] = {}
        self._cache_size = cache_size
        self.clock = clock

    def token(self, principal: Principal, audience: str) -> str:
        return self._entry(principal, audience)[0]

    def header_line(self, principal: Principal, audience: str) -> bytes:
        """`x-internal-token: <token>\r\n`, as it goes on the wire (encoded once per token)."""
        return self._entry(principal, audience)[2]

    def _entry(self, principal: Principal, audience: str) -> tuple[str, float, bytes]:
        now = self.clock()
        key = (principal, audience)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit
        token = mint_internal_token(
            self._key,
            principal,
            audience=audience,
            issuer=self.issuer,
            ttl_seconds=self.ttl_seconds,
            now=now,
        )
        if len(self._cache) >= self._cache_size:
            # Dropping everything is cheap and rare; the next calls simply sign again.
            self._cache.clear()
        entry = (
            token,
            now + self.ttl_seconds - self.refresh_margin_seconds,
            b"x-internal-token: " + token.encode("ascii") + b"\r\n",
        )
        self._cache[key] = entry
        return entry
