"""Scoring models' domain errors."""

from __future__ import annotations

import uuid

from servicekit.errors import Conflict, NotFound


class ScoringModelNotFound(NotFound):
    def __init__(self, model_id: uuid.UUID | str) -> None:
        super().__init__(f"no scoring model {model_id}")


class ModelInUse(Conflict):
    slug = "scoring-model-in-use"
    title = "The scoring model has scored leads and no longer changes"
