"""Teams' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from gateway.identity.schemas import Input, Name
from servicekit.fields import Omittable


class TeamCreate(Input):
    name: Name
    parent_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None


class TeamUpdate(Input):
    """Only the fields sent change; a null parent or manager takes it away."""

    name: Omittable[Name] = None
    parent_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    manager_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
