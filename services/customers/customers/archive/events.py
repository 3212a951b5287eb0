"""Event types and payloads: each payload carries what a consumer needs without calling back
(owner, team, region, level, status, code, name, phone and email besides the change itself;
the opportunities service matches leads to customers on the last three)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.outbox import record_event, record_events

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_LEVEL_CHANGED = "customer.level_changed"
CUSTOMER_OWNER_CHANGED = "customer.owner_changed"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_INVALIDATED = "customer.invalidated"
# The archive's settings as saved; consumers take the follow-up cadence per level from it.
SETTINGS_CHANGED = "customer_settings.changed"

_FACTS = (
    "code",
    "name",
    "region",
    "level",
    "status",
    "owner_id",
    "team_id",
    "industry",
    "phone",
    "email",
    "source",
    "estimated_potential",
    "location",
    "version",
)


def customer_facts(customer: Any) -> dict[str, Any]:
    """The facts every customer event repeats. `customer` is a model, a row or a mapping.
    Values stay Python objects: the outbox encodes them (UUIDs, times, exact decimals)."""
    # A plain dict (the bulk paths' rows) is read directly: the ABC check and a getter call per
    # field cost more than the rest of the payload at 10,000 events per import.
    if type(customer) is dict:
        data = {k: customer[k] for k in _FACTS}
        data["id"] = customer["id"]
        data["tags"] = list(customer["tags"] or ())
        return data
    get = customer.get if isinstance(customer, Mapping) else lambda k: getattr(customer, k)
    data = {k: get(k) for k in _FACTS}
    data["id"] = get("id")
    data["tags"] = list(get("tags") or ())
    return data


def created(customer: Any, actor_id: str | None) -> dict[str, Any]:
    data = customer_facts(customer)
    data["created_by"] = actor_id
    data["created_at"] = _get(customer, "created_at")
    return data


def updated(
    customer: Any, changes: Mapping[str, tuple[Any, Any]], actor_id: str | None
) -> dict[str, Any]:
    return {
        **customer_facts(customer),
        "changed_fields": sorted(changes),
        "changes": {f: {"old": o, "new": n} for f, (o, n) in changes.items()},
        "updated_by": actor_id,
    }


def level_changed(customer: Any, old: str, new: str, actor_id: str | None) -> dict[str, Any]:
    return {**customer_facts(customer), "old_level": old, "new_level": new, "changed_by": actor_id}


def owner_changed(
    customer: Any,
    old_owner_id: uuid.UUID | None,
    old_team_id: uuid.UUID | None,
    reason: str,
    kind: str,
    actor_id: str | None,
) -> dict[str, Any]:
    return {
        **customer_facts(customer),
        "old_owner_id": old_owner_id,
        "old_team_id": old_team_id,
        "in_pool": _get(customer, "owner_id") is None,
        "reason": reason,
        "kind": kind,
        "changed_by": actor_id,
    }


def invalidated(customer: Any, reason: str | None, actor_id: str | None) -> dict[str, Any]:
    return {**customer_facts(customer), "reason": reason, "changed_by": actor_id}


def merged(customer: Any, survivor: Any, actor_id: str | None) -> dict[str, Any]:
    """`customer` is the duplicate that was folded into `survivor`."""
    return {
        **customer_facts(customer),
        "merged_into_id": _get(survivor, "id"),
        "merged_into_code": _get(survivor, "code"),
        "changed_by": actor_id,
    }


def settings_changed(doc: dict[str, Any], version: int, actor_id: str | None) -> dict[str, Any]:
    return {**doc, "version": version, "changed_by": actor_id}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key)


async def emit(
    session: AsyncSession, type_: str, subject: uuid.UUID | None, data: dict[str, Any]
) -> None:
    await record_event(session, type_, subject, data)


async def emit_many(
    session: AsyncSession, events: Sequence[tuple[str, uuid.UUID, dict[str, Any]]]
) -> None:
    """Many events in one round trip (bulk transfers, import), in the order given."""
    await record_events(session, events)
