"""The pipeline's domain errors."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class OpportunityNotFound(NotFound):
    """Also what a caller gets for an opportunity they may not see."""

    def __init__(self, opportunity_id: uuid.UUID | str) -> None:
        super().__init__(f"no opportunity {opportunity_id}")


class WrongStage(Conflict):
    slug = "opportunity-stage"
    title = "The opportunity's stage does not allow this"
