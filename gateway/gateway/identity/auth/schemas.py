"""Signing in's HTTP contract."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from gateway.identity.schemas import Input, Password, Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class RefreshRequest(Input):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(Input):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)


class PasswordChange(Input):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class CallerKind(StrEnum):
    user = "user"
    key = "key"


class GrantType(StrEnum):
    password = "password"
    refresh_token = "refresh_token"


class MeRead(BaseModel):
    kind: CallerKind
    id: uuid.UUID
    email: str | None = None
    name: str | None = None
    # An API key's role is integration.
    role: Role | Literal["integration"]
    team_id: uuid.UUID | None = None
    active: bool = True
    visible_team_ids: list[uuid.UUID]
    scopes: list[str]
