"""Internal tokens for tests, minted with a test key pair exactly as the gateway mints them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from servicekit.auth import Principal, load_private_key, mint_internal_token

INTERNAL_TOKEN_HEADER = "X-Internal-Token"


def make_principal(
    role: str = "rep",
    *,
    sub: str | None = None,
    team_id: str | None = None,
    visible_team_ids: Iterable[str] | None = None,
    scopes: Iterable[str] = (),
    kind: str = "user",
) -> Principal:
    team = team_id or str(uuid.uuid4())
    visible = frozenset(visible_team_ids) if visible_team_ids is not None else frozenset({team})
    return Principal(
        sub=sub or str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        role=role,
        team_id=team,
        visible_team_ids=visible,
        scopes=frozenset(scopes),
    )


class TokenMinter:
    def __init__(self, private_pem: str, public_pem: str) -> None:
        self.private_pem = private_pem
        self.public_pem = public_pem
        self._key = load_private_key(private_pem)

    def token(
        self, principal: Principal, audience: str, ttl_seconds: int = 60, now: float | None = None
    ) -> str:
        return mint_internal_token(
            self._key, principal, audience=audience, ttl_seconds=ttl_seconds, now=now
        )

    def headers(self, principal: Principal, audience: str) -> dict[str, str]:
        return {INTERNAL_TOKEN_HEADER: self.token(principal, audience)}
