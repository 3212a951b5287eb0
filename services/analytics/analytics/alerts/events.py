"""Event types of the alerts (analytics' own feed) and their payload: the alert as the API
reads it, so that an integration can notify people without calling back."""

from __future__ import annotations

from typing import Any

ALERT_RAISED = "alert.raised"
ALERT_RESOLVED = "alert.resolved"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_DISMISSED = "alert.dismissed"


def alert_facts(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as the API reads it (`service.read`)."""
    return dict(alert)
