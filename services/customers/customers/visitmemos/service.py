"""Applying the visits feed: every completed visit, once (replays change nothing)."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.visitmemos import repository
from servicekit.outbox import Event

log = logging.getLogger("customers.visitmemos")
# The visits service's feed, and the one event type kept from it.
SOURCE = "visits"
VISIT_COMPLETED = "visit.completed"


def _row(data: dict[str, Any]) -> dict[str, Any]:
    rep = data.get("rep_id")
    return {
        "visit_id": uuid.UUID(str(data["id"])),
        "customer_id": uuid.UUID(str(data["customer_id"])),
        "rep_id": None if rep is None else uuid.UUID(str(rep)),
        "rep_name": data.get("rep_name"),
        "channel": data.get("channel"),
        "purpose": data.get("purpose"),
        "check_in_at": datetime.fromisoformat(str(data["check_in_at"])),
        "visited_on": date.fromisoformat(str(data["visit_date"])),
        "effective": bool(data.get("effective")),
        "memo": data.get("memo"),
    }


async def apply_event(session: AsyncSession, event: Event) -> None:
    """The consumer's handler (`hooks.follow_visits`), in the consumer's transaction."""
    if event.type != VISIT_COMPLETED:
        return
    try:
        row = _row(event.data or {})
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("visit event %s is not one this service reads (%s); skipped", event.id, exc)
        return
    await repository.insert(session, row)
