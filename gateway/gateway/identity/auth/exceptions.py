"""Signing in's expected failures, each carrying its status through the kit's base classes."""

from __future__ import annotations

import math

from servicekit.errors import TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__("wrong email or password", error="invalid_grant")


class AccountDeactivated(Unauthorized):
    def __init__(self) -> None:
        super().__init__("this account is deactivated", error="invalid_grant")


class InvalidRefreshToken(Unauthorized):
    def __init__(self, detail: str = "the refresh token is not valid") -> None:
        super().__init__(detail, error="invalid_grant")


class LoginThrottled(TooManyRequests):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"too many failed sign-ins; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
        )
