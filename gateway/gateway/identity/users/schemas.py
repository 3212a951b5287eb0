"""Users' HTTP contract (field names fixed by the gateway issue)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from gateway.identity.schemas import Email, Input, Name, Password, Role
from servicekit.fields import Omittable


class UserCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "wang.fang@example.com",
                    "name": "Wang Fang",
                    "role": "rep",
                    "team_id": "5d1f0c7e-2a4b-4c8e-9f13-7b6a2e0d9c41",
                    "password": "a-long-passphrase-of-hers",
                }
            ]
        }
    )

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
