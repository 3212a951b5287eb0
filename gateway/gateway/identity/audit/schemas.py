"""The audit trail's HTTP contract."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel


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


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a list shows: `action` is an action or its family (`login`)."""

    action: str | None = None
    actor_id: str | None = None
    subject_id: str | None = None
    since: datetime | None = None
