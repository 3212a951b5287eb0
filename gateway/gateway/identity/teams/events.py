"""Teams' event type and payload: full facts, so consumers need not call back."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.identity.models import Team
from servicekit.directory import TEAM_CHANGED as TEAM_CHANGED


def team_data(
    team: Team,
    ancestor_ids: list[uuid.UUID],
    manager_ids: list[uuid.UUID],
    change: str,
) -> dict[str, Any]:
    return {
        "id": str(team.id),
        "name": team.name,
        "parent_id": None if team.parent_id is None else str(team.parent_id),
        "manager_id": None if team.manager_id is None else str(team.manager_id),
        "ancestor_ids": [str(a) for a in ancestor_ids],
        "manager_ids": [str(m) for m in manager_ids],
        "change": change,
    }
