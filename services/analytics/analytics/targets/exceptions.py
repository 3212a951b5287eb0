"""The targets' own problems."""

from __future__ import annotations

from servicekit.errors import Conflict, NotFound


class TargetNotFound(NotFound):
    def __init__(self, target_id: object) -> None:
        super().__init__(f"no target {target_id}")


class TargetExists(Conflict):
    slug = "target-exists"
    title = "A target for this metric, period and scope exists"


class AlreadyDecomposed(Conflict):
    slug = "target-decomposed"
    title = "The target is decomposed already"
