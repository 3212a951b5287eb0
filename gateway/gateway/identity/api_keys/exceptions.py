"""API keys' expected failures."""

from __future__ import annotations

import uuid

from servicekit.errors import NotFound


class ApiKeyNotFound(NotFound):
    def __init__(self, key_id: uuid.UUID) -> None:
        super().__init__(f"no API key {key_id}")
