"""The gateway's own credentials: access JWTs, refresh tokens and API-key secrets.

Refresh tokens and API keys are 256-bit random secrets stored as sha256 digests: with that much
entropy a slow hash adds nothing, and a fast one keeps the per-request key lookup cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from servicekit.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "fieldforce-identity"
AUDIENCE = "fieldforce-api"
REFRESH_PREFIX = "ffr_"
API_KEY_PREFIX = "ffk_"
API_KEY_DISPLAY_LENGTH = 12


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    """What a key list shows: enough to tell keys apart, far too little to guess the rest."""
    return key[:API_KEY_DISPLAY_LENGTH]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: float


class AccessTokens:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._key = secret.encode()
        self.ttl_seconds = ttl_seconds

    def mint(self, user_id: str, session_id: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "sid": session_id,
            "typ": "access",
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def _signed_by_us(self, token: str) -> bool:
        """The HMAC alone, about 20x cheaper than PyJWT's full decode: forged or garbled tokens
        are turned away before it; PyJWT stays the authority for everything else."""
        signed, _, signature = token.rpartition(".")
        if "." not in signed:
            return False
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            expected = hmac.new(self._key, signed.encode("ascii"), hashlib.sha256).digest()
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, expected)

    def verify(self, token: str) -> AccessClaims:
        if not self._signed_by_us(token):
            raise Unauthorized("the access token is not valid")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "the access token has expired; refresh it or sign in again"
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the access token is not valid") from None
        if claims.get("typ") != "access":
            raise Unauthorized("the access token is not valid")
        return AccessClaims(str(claims["sub"]), str(claims["sid"]), float(claims["exp"]))
