"""Errors of the visit plans."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class PlanNotFound(NotFound):
    """Also the answer for a plan the caller may not see."""

    def __init__(self, plan_id: uuid.UUID) -> None:
        super().__init__(f"no visit plan {plan_id}")


class PlanExists(Conflict):
    slug = "plan-exists"
    title = "The rep already has a plan for that day"

    def __init__(self, existing_id: uuid.UUID | None) -> None:
        super().__init__(
            "one plan per rep per day: change the existing one", existing_id=existing_id
        )


class WrongPlanState(Conflict):
    slug = "plan-state"
    title = "Not possible in the plan's state"
