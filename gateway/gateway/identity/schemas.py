"""The HTTP contract of identity (field names fixed by the gateway issue)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]
Role = Literal["admin", "manager", "rep"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class RefreshRequest(_Input):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(_Input):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)


class UserCreate(_Input):
    email: Email
    name: Name
    role: Role
    team_id: uuid.UUID | None = None
    password: Password
    active: bool = True


class UserUpdate(_Input):
    """Only the fields sent are changed; `team_id: null` takes the user out of their team."""

    email: Email | None = None
    name: Name | None = None
    role: Role | None = None
    team_id: uuid.UUID | None = None
    active: bool | None = None
    password: Password | None = None


class PasswordChange(_Input):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    team_id: uuid.UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime


class MeRead(BaseModel):
    kind: Literal["user", "key"]
    id: uuid.UUID
    email: str | None = None
    name: str | None = None
    role: str
    team_id: uuid.UUID | None = None
    active: bool = True
    visible_team_ids: list[uuid.UUID]
    scopes: list[str]


class TeamCreate(_Input):
    name: Name
    parent_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None


class TeamUpdate(_Input):
    name: Name | None = None
    parent_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    manager_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(_Input):
    name: Name
    scopes: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=64
    )


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret; shown this once, stored only as a digest")


class AuditRead(BaseModel):
    id: uuid.UUID
    at: datetime
    action: str
    actor_type: str
    actor_id: str | None
    subject_type: str | None
    subject_id: str | None
    client_address: str | None
    detail: dict[str, Any]
