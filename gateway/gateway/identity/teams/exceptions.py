"""Teams' expected failures."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class TeamNotFound(NotFound):
    def __init__(self, team_id: uuid.UUID) -> None:
        super().__init__(f"no team {team_id}")


class TeamNotEmpty(Conflict):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the team cannot be deleted: {reason}")
