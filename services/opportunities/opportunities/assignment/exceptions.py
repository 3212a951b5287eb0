"""Assignment rules' domain errors."""

from __future__ import annotations

import uuid

from servicekit.errors import NotFound


class RuleNotFound(NotFound):
    def __init__(self, rule_id: uuid.UUID | str) -> None:
        super().__init__(f"no assignment rule {rule_id}")
