"""The internal token: the gateway signs it (EdDSA), services verify it into a `Principal`.

Services hold only the public key. Verified tokens are cached until they expire, because the
gateway reuses one token per principal and audience for most of its ~60 s life: the signature
check then costs once per minute instead of once per request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.requests import Request

from servicekit.clock import SYSTEM_CLOCK, Clock
from servicekit.errors import Forbidden, Unauthorized

INTERNAL_TOKEN_HEADER = "x-internal-token"
# Request state: the verified token, and the apps acting for the caller (the access line's
# `act`), set by `authenticate` (and by the gateway's edge for delegated calls).
TOKEN_STATE_KEY = "internal_token"
ACT_STATE_KEY = "act"
_TOKEN_HEADER_RAW = INTERNAL_TOKEN_HEADER.encode("latin-1")
ALGORITHM = "EdDSA"

Role = Literal["admin", "manager", "rep", "integration"]


class RoleChecks:
    """The role predicates of anything with identity's `role`: a principal, a directory user."""

    __slots__ = ()
    role: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def is_rep(self) -> bool:
        return self.role == "rep"


@dataclass(frozen=True, slots=True)
class Principal(RoleChecks):
    """Who is calling, as the gateway vouches for it."""

    sub: str
    kind: Literal["user", "key"]
    role: str
    team_id: str | None = None
    visible_team_ids: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    name: str | None = None
    # The apps acting on this principal's behalf, nearest first: empty for a call the
    # principal made itself, ("opportunities",) for a call the opportunities app made while
    # serving them (`servicekit.calls`). RFC 8693's nested `act` claim in the token.
    act: tuple[str, ...] = ()

    @property
    def user_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.sub) if self.kind == "user" else None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this action needs the '{scope}' scope")

    def team_uuids(self) -> list[uuid.UUID]:
        """The visible teams as UUIDs, for queries (anything else in the token is ignored)."""
        out = []
        for team in self.visible_team_ids:
            try:
                out.append(uuid.UUID(team))
            except ValueError:
                continue
        return out

    def sees_team(self, team_id: uuid.UUID | str | None) -> bool:
        if self.is_admin:
            return True
        return team_id is not None and str(team_id) in self.visible_team_ids

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": self.sub,
            "kind": self.kind,
            "role": self.role,
            "team": self.team_id,
            "teams": sorted(self.visible_team_ids),
            "scopes": sorted(self.scopes),
            "name": self.name,
        }
        if self.act:
            claims["act"] = act_claim(self.act)
        return claims

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        return cls(
            sub=str(claims["sub"]),
            kind=claims.get("kind", "user"),
            role=str(claims["role"]),
            team_id=claims.get("team"),
            visible_team_ids=frozenset(claims.get("teams") or ()),
            scopes=frozenset(claims.get("scopes") or ()),
            name=claims.get("name"),
            act=actors(claims.get("act")),
        )


# Longer chains of apps calling apps on someone's behalf are refused (a loop, not a design).
MAX_ACT_DEPTH = 4


def act_claim(chain: tuple[str, ...]) -> dict[str, Any]:
    """RFC 8693 §4.1: the current actor outermost, earlier ones nested inside it."""
    claim: dict[str, Any] | None = None
    for actor in reversed(chain):
        claim = {"sub": actor} if claim is None else {"sub": actor, "act": claim}
    assert claim is not None
    return claim


def actors(claim: Any) -> tuple[str, ...]:
    """The chain of an `act` claim, nearest first; ValueError when it is malformed."""
    chain: list[str] = []
    while claim is not None:
        if not isinstance(claim, dict) or not isinstance(claim.get("sub"), str):
            raise ValueError("malformed act claim")
        chain.append(claim["sub"])
        if len(chain) > MAX_ACT_DEPTH:
            raise ValueError("act chain too long")
        claim = claim.get("act")
    return tuple(chain)


def generate_keypair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh Ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the internal token key must be Ed25519")
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the internal token key must be Ed25519")
    return key


def mint_internal_token(
    private_key: Ed25519PrivateKey,
    principal: Principal,
    *,
    audience: str,
    issuer: str = "fieldforce-gateway",
    ttl_seconds: int = 60,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = principal.to_claims()
    claims.update(
        {
            "aud": audience,
            "iss": issuer,
            "iat": issued,
            "exp": issued + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
    )
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies internal tokens for one audience (a service: its own name) or several (the
    gateway, taking back a service's token as a delegation), caching good ones until they
    expire."""

    def __init__(
        self,
        public_key_pem: str,
        *,
        audience: str | Sequence[str],
        issuer: str,
        cache_size: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._key = load_public_key(public_key_pem) if public_key_pem else None
        self._clock = clock
        self.audience = audience if isinstance(audience, str) else list(audience)
        self.issuer = issuer
        self._cache: dict[str, tuple[Principal, float, str]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        return self.verify_with_audience(token)[0]

    def verify_with_audience(self, token: str) -> tuple[Principal, str]:
        """The principal and the audience the token was minted for."""
        now = self._clock.timestamp()
        hit = self._cache.get(token)
        if hit is not None:
            principal, exp, audience = hit
            if exp > now:
                return principal, audience
            del self._cache[token]
        if self._key is None:
            raise Unauthorized("this service has no key to verify internal tokens")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                # Lifetimes are checked below against the verifier's clock (PyJWT reads the
                # system's, which a test that moves time cannot steer).
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            expires, issued, audience = claims["exp"], claims["iat"], claims["aud"]
            if not all(type(v) in (int, float) for v in (expires, issued)) or issued > now:
                raise ValueError("bad lifetime")
            if not isinstance(audience, str):
                raise ValueError("one audience per internal token")
            if expires <= now:
                raise Unauthorized("the internal token has expired")
            principal = Principal.from_claims(claims)
        except (jwt.InvalidTokenError, KeyError, ValueError):
            raise Unauthorized("the internal token is not valid") from None
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (principal, float(claims["exp"]), audience)
        return principal, audience


def authenticate(request: Request) -> Principal:
    """The principal of this request, verified once and kept on the request."""
    scope = request.scope
    state = scope.setdefault("state", {})
    cached = state.get("principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    # The raw ASGI headers, as `request.headers.get` reads them (first one wins), without
    # building a `Headers` object on every request.
    token = None
    for name, value in scope["headers"]:
        if name == _TOKEN_HEADER_RAW:
            token = value.decode("latin-1")
            break
    if not token:
        raise Unauthorized("requests reach this service only through the gateway")
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verify(token)
    state["principal"] = principal
    # Kept for calls this app makes on the caller's behalf (`servicekit.calls`).
    state[TOKEN_STATE_KEY] = token
    if principal.act:
        state[ACT_STATE_KEY] = principal.act
    return principal


async def current_principal(request: Request) -> Principal:
    """`authenticate` as a FastAPI dependency.

    FastAPI runs a plain `def` dependency in the thread pool: for a cache hit that costs a
    thread hand-off per request, which profiling showed as the largest single cost of the
    read path (it halved throughput). Verification never blocks long (an Ed25519 check, once
    per token), so it runs on the event loop.
    """
    return authenticate(request)
