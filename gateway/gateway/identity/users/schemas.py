"""Users' HTTP contract (field names fixed by the gateway issue)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from gateway.identity.schemas import Email, Input, Name, Password, Role


class UserCreate(Input):
    email: Email
    name: Name
    role: Role
    team_id: uuid.UUID | None = None
    password: Password
    active: bool = True


class UserUpdate(Input):
    """Only the fields sent are changed; `team_id: null` takes the user out of their team."""

    email: Email | None = None
    name: Name | None = None
    role: Role | None = None
    team_id: uuid.UUID | None = None
    active: bool | None = None
    password: Password | None = None


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    team_id: uuid.UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime
