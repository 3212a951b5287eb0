"""The customers read model: applying the customers feed, and the lookups the features make.

Every `customer.*` event carries the customer's full facts (id, code, name, region, level,
status, owner, team, version, location), so the model applies whatever type it is, new types
(dormant, lost) included; `customer_settings.changed` carries the follow-up cadence per level.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.outbox import Event
from visits.customer_facts import repository
from visits.customer_facts.access import can_see
from visits.customer_facts.exceptions import UnknownCustomer

log = logging.getLogger("visits.customer_facts")

# The customers service's feed; its settings event carries the follow-up cadence per level.
SOURCE = "customers"
SETTINGS_CHANGED = "customer_settings.changed"
LEVELS = ("A", "B", "C")
_REQUIRED = ("id", "code", "name", "region", "level", "status")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return None if value in (None, "") else uuid.UUID(str(value))
    except ValueError:
        return None


def _point(location: Any) -> tuple[float | None, float | None]:
    if not isinstance(location, dict):
        return None, None
    try:
        return float(location["lat"]), float(location["lon"])
    except (KeyError, TypeError, ValueError):
        return None, None


def facts_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The read model's row from an event's data; None when it carries no customer facts."""
    if any(data.get(key) in (None, "") for key in _REQUIRED):
        return None
    customer_id = _uuid(data["id"])
    if customer_id is None:
        return None
    row: dict[str, Any] = {
        "id": customer_id,
        "code": str(data["code"]),
        "name": str(data["name"]),
        "region": str(data["region"]),
        "level": str(data["level"]),
        "status": str(data["status"]),
        "owner_id": _uuid(data.get("owner_id")),
        "team_id": _uuid(data.get("team_id")),
        "version": int(data.get("version") or 0),
    }
    # Events from before customers had a location say nothing of it: keep what the model has.
    if "location" in data:
        row["lat"], row["lon"] = _point(data["location"])
    return row


async def apply_event(session: AsyncSession, event: Event) -> None:
    """The consumer's handler (`hooks.follow_customers`), in the consumer's transaction."""
    data = event.data or {}
    if event.type == SETTINGS_CHANGED:
        cadence = data.get("cadence_days") or {}
        days = {
            level: int(cadence[level])
            for level in LEVELS
            if isinstance(cadence.get(level), int) and cadence[level] > 0
        }
        await repository.set_cadences(session, days)
        return
    if not event.type.startswith("customer."):
        return
    row = facts_of(data)
    if row is None:
        log.warning("event %s (%s) carries no customer facts; skipped", event.id, event.type)
        return
    await repository.upsert(session, row)


async def visible_customer(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, field: str
) -> sa.Row[Any]:
    """The customer, if the principal may see it; else a 422 naming `field`."""
    row = await repository.get(session, customer_id)
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        raise UnknownCustomer(field, customer_id)
    return row


async def visible_customers(
    session: AsyncSession, principal: Principal, wanted: Iterable[tuple[str, uuid.UUID]]
) -> dict[uuid.UUID, sa.Row[Any]]:
    """Many at once (a plan's items): `wanted` is (field path, id); the first unknown one is
    the 422."""
    pairs = list(wanted)
    rows = await repository.get_many(session, [cid for _, cid in pairs])
    for field, customer_id in pairs:
        row = rows.get(customer_id)
        if row is None or not can_see(principal, row.owner_id, row.team_id):
            raise UnknownCustomer(field, customer_id)
    return rows
