"""Errors of the visit log."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class VisitNotFound(NotFound):
    """Also the answer for a visit the caller may not see."""

    def __init__(self, visit_id: uuid.UUID) -> None:
        super().__init__(f"no visit {visit_id}")


class WrongVisitState(Conflict):
    slug = "visit-state"
    title = "Not possible in the visit's state"


class PlanItemTaken(Conflict):
    slug = "plan-item-fulfilled"
    title = "The plan item already has its visit"

    def __init__(self, item_id: uuid.UUID) -> None:
        super().__init__(f"plan item {item_id} is already fulfilled by another visit")
