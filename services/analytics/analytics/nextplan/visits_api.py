"""The visits service's follow-up due list, read on the caller's behalf through the gateway
(`servicekit.calls`): the visits service applies its own rule of who sees which rep's list,
and its cadences (the customers service's settings, which analytics does not follow)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from analytics.nextplan.exceptions import UpstreamFailed
from servicekit.calls import CallerCalls
from servicekit.errors import Forbidden, ServiceUnavailable

FOLLOW_UPS = "/api/v1/visits/follow-ups"
# The visits list's largest page.
PAGE = 200


async def follow_ups(calls: CallerCalls, rep_id: uuid.UUID, day: date, limit: int) -> list[Any]:
    """The rep's customers due a visit by `day` (A first, then the most overdue), at most
    `limit`."""
    params = {
        "rep_id": str(rep_id),
        "due_before": (day + timedelta(days=1)).isoformat(),
        "limit": str(min(PAGE, max(limit, 1))),
    }
    answer = await calls.get(FOLLOW_UPS, params=params)
    if answer.ok:
        doc = answer.json() or {}
        return list(doc.get("items") or [])[:limit]
    doc = answer.json()
    said = doc.get("detail") if isinstance(doc, dict) else None
    detail = f"the visits service answered {answer.status}" + (f": {said}" if said else "")
    if answer.status in (401, 403):
        raise Forbidden(detail)
    if answer.status == 503:
        raise ServiceUnavailable(detail)
    raise UpstreamFailed(detail)
