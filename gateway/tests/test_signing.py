"""The internal-token cache of the gateway's signer: one token per principal and service for
most of its life, a new one before it expires, never one principal's token for another."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import jwt

from gateway.signing import TokenSigner
from servicekit.auth import TokenVerifier, generate_keypair, load_private_key
from servicekit.testing.clock import FakeClock
from servicekit.testing.tokens import make_principal

ISSUER = "fieldforce-gateway"


def _signer(cache_size: int = 50_000) -> tuple[TokenSigner, FakeClock, str]:
    private, public = generate_keypair()
    clock = FakeClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    signer = TokenSigner(
        load_private_key(private),
        issuer=ISSUER,
        ttl_seconds=60,
        refresh_margin_seconds=15,
        cache_size=cache_size,
        clock=clock.timestamp,
    )
    return signer, clock, public


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_a_token_is_reused_until_shortly_before_it_expires_then_replaced() -> None:
    signer, clock, public = _signer()
    rep = make_principal("rep")
    first = signer.token(rep, "customers")
    clock.advance(44)
    assert signer.token(rep, "customers") == first
    assert signer.header_line(rep, "customers") == b"x-internal-token: " + first.encode() + b"\r\n"
    clock.advance(1)  # 15 s before it expires: a fresh one, valid for a whole minute again
    second = signer.token(rep, "customers")
    assert second != first
    claims = _claims(second)
    assert claims["iat"] == int(clock.timestamp()) and claims["exp"] == claims["iat"] + 60
    assert signer.token(rep, "customers") == second
    # The service, at that time, reads the same principal from it.
    verifier = TokenVerifier(public, audience="customers", issuer=ISSUER, clock=clock)
    assert verifier.verify(second) == rep


def test_different_principals_and_services_never_share_a_token() -> None:
    signer, _clock, _public = _signer()
    rep = make_principal("rep")
    principals = [
        rep,
        make_principal("rep", team_id=rep.team_id),  # another user of the same team
        dataclasses.replace(rep, visible_team_ids=frozenset({"another-team"})),  # moved
        dataclasses.replace(rep, role="manager"),
        make_principal("integration", kind="key", sub=rep.sub, scopes=["visits:read"]),
        make_principal("integration", kind="key", sub=rep.sub, scopes=["visits:write"]),
    ]
    tokens = {(p, s): signer.token(p, s) for p in principals for s in ("customers", "visits")}
    assert len(set(tokens.values())) == len(tokens) == 12
    for (principal, service), token in tokens.items():
        claims = _claims(token)
        assert claims["aud"] == service and claims["sub"] == principal.sub
        assert claims["kind"] == principal.kind and claims["role"] == principal.role
        assert set(claims["scopes"]) == set(principal.scopes)  # type: ignore[call-overload]
        assert set(claims["teams"]) == set(principal.visible_team_ids)  # type: ignore[call-overload]


def test_the_cache_is_bounded() -> None:
    signer, _clock, _public = _signer(cache_size=3)
    for _ in range(10):
        signer.token(make_principal("rep"), "customers")
        assert len(signer._cache) <= 3
