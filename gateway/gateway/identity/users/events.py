"""Users' event types and payloads: full facts, so consumers need not call back."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.identity.models import User

# The identity feed's event types are defined once, in the kit, whose directory reads them in
# every service.
from servicekit.directory import USER_CREATED as USER_CREATED
from servicekit.directory import USER_DEACTIVATED as USER_DEACTIVATED
from servicekit.directory import USER_REACTIVATED as USER_REACTIVATED
from servicekit.directory import USER_TEAM_CHANGED as USER_TEAM_CHANGED
from servicekit.directory import USER_UPDATED as USER_UPDATED


def user_data(user: User, manager_ids: list[uuid.UUID], **extra: Any) -> dict[str, Any]:
    """`manager_ids`: the managers who see the user's team (its manager, then up the tree)."""
    data: dict[str, Any] = {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "team_id": None if user.team_id is None else str(user.team_id),
        "active": user.active,
        "manager_ids": [str(m) for m in manager_ids],
    }
    data.update(extra)
    return data
