"""Field types shared by identity's feature schemas (the contracts are in each feature)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

from gateway.identity.emails import normalize_email


def _normalized(value: Any) -> Any:
    # Far too long input is left to the length limit, unread.
    if isinstance(value, str) and len(value) <= 1024:
        return normalize_email(value)
    return value


# The normaliser wraps the constrained string: it runs first (NFKC can change the length and
# make an `@` of a full-width one), and the document still shows the constraints.
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
    BeforeValidator(_normalized),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class Role(StrEnum):
    """A user's role: admins see everything, managers the teams they lead, reps their own."""

    admin = "admin"
    manager = "manager"
    rep = "rep"


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
