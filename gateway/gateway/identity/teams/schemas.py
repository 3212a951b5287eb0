"""Teams' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from gateway.identity.schemas import Input, Name


class TeamCreate(Input):
    name: Name
    parent_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None


class TeamUpdate(Input):
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
