"""Users' HTTP contract (field names fixed by the gateway issue)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from gateway.identity.schemas import Email, Input, Name, Password, Role
from servicekit.fields import Omittable


class UserCreate(Input):
    email: Email
    name: Name
    role: Role
    team_id: uuid.UUID | None = None
    password: Password
    active: bool = True


class UserUpdate(Input):
    """Only the fields sent are changed; `team_id: null` takes the user out of their team."""

    email: Omittable[Email] = None
    name: Omittable[Name] = None
    role: Omittable[Role] = None
    team_id: uuid.UUID | None = None
    active: Omittable[bool] = None
    password: Omittable[Password] = None


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    team_id: uuid.UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime
