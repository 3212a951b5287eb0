"""Event types of the alerts (analytics' own feed) and their payload: the alert as the API
reads it, so that an integration can notify people without calling back."""

from __future__ import annotations

from typing import Any

ALERT_RAISED = "alert.raised"
ALERT_RESOLVED = "alert.resolved"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_DISMISSED = "alert.dismissed"

# The alert as the API reads it, in its events too.
READ_FIELDS = (
    "id",
    "rule",
    "subject_kind",
    "subject_id",
    "rep_id",
    "team_id",
    "customer_id",
    "region",
    "figures",
    "status",
    "raised_at",
    "resolved_at",
    "decision",
    "decided_by",
    "decided_at",
    "note",
    "version",
)


def alert_facts(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as the API reads it (`service.read`)."""
    return dict(alert)
