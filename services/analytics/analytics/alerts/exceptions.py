"""The alerts' own problems."""

from __future__ import annotations

from servicekit.errors import Conflict, NotFound


class AlertNotFound(NotFound):
    def __init__(self, alert_id: object) -> None:
        super().__init__(f"no alert {alert_id}")


class AlertResolved(Conflict):
    slug = "alert-resolved"
    title = "The alert is resolved"
