"""Webhooks' expected failures."""

from __future__ import annotations

import uuid

from servicekit.errors import NotFound, ValidationFailed


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: uuid.UUID) -> None:
        super().__init__(f"no webhook {webhook_id}")


class ReplayNotFound(NotFound):
    def __init__(self, replay_id: uuid.UUID) -> None:
        super().__init__(f"no replay {replay_id} of this webhook")


class UrlRefused(ValidationFailed):
    """A URL that may not be subscribed: its form, or an internal address it leads to."""

    slug, title = "webhook-url-refused", "The webhook URL is refused"

    def __init__(self, why: str) -> None:
        super().__init__(f"url: {why}", errors=[{"loc": ["url"], "msg": why}])
