"""Event types and payloads: each payload carries what a consumer needs without calling back
(owner, team, region, level, status, code, name, phone and email besides the change itself;
the opportunities service matches leads to customers on the last three).

Every event says when what it tells happened, as `occurred_at`: the time of the change for a
change made now, the past time an import or a computed state brings (a customer created years
ago, dormant since the day its last order got too old). The feed's order stays the order of
the writes; `occurred_at` is what a period's figures are computed on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import utcnow
from servicekit.outbox import record_event, record_events

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_LEVEL_CHANGED = "customer.level_changed"
CUSTOMER_OWNER_CHANGED = "customer.owner_changed"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_INVALIDATED = "customer.invalidated"
# A rep's change of key fields, waiting for a manager: filed, then decided (approved,
# rejected), withdrawn by its author, or cancelled when the customer changed owner or team.
CHANGE_REQUEST_FILED = "change_request.filed"
CHANGE_REQUEST_APPROVED = "change_request.approved"
CHANGE_REQUEST_REJECTED = "change_request.rejected"
CHANGE_REQUEST_WITHDRAWN = "change_request.withdrawn"
CHANGE_REQUEST_CANCELLED = "change_request.cancelled"
CHANGE_REQUEST_EVENTS = {
    "pending": CHANGE_REQUEST_FILED,
    "approved": CHANGE_REQUEST_APPROVED,
    "rejected": CHANGE_REQUEST_REJECTED,
    "withdrawn": CHANGE_REQUEST_WITHDRAWN,
    "cancelled": CHANGE_REQUEST_CANCELLED,
}
_REQUEST_FACTS = (
    "id",
    "customer_id",
    "requested_by",
    "team_id",
    "changes",
    "base_version",
    "reason",
    "status",
    "decided_by",
    "decided_at",
    "comment",
    "created_at",
)

CUSTOMER_DORMANT = "customer.dormant"
CUSTOMER_LOST = "customer.lost"
CUSTOMER_REACTIVATED = "customer.reactivated"
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


def created(
    customer: Any, actor_id: str | None, owner_since: Any = None, level_since: Any = None
) -> dict[str, Any]:
    """A new customer; `owner_since` / `level_since` when an import says its owner or level
    hold from later than its creation (before then: unknown)."""
    data = customer_facts(customer)
    created_at = _get(customer, "created_at")
    data["created_by"] = actor_id
    data["created_at"] = created_at
    data["owner_since"] = owner_since or created_at
    data["level_since"] = level_since or created_at
    data["occurred_at"] = created_at
    return data


def what_changed(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    """`changed_fields` and `changes` (`{field: {old, new}}`) of every "changed" payload."""
    return {
        "changed_fields": sorted(changes),
        "changes": {f: {"old": o, "new": n} for f, (o, n) in changes.items()},
    }


def updated(
    customer: Any, changes: Mapping[str, tuple[Any, Any]], actor_id: str | None
) -> dict[str, Any]:
    return {**customer_facts(customer), **what_changed(changes), "updated_by": actor_id}


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


def change_request(request: Any, customer: Any) -> dict[str, Any]:
    """A change request's state (a model or a row), with the customer's code and owner, so a
    consumer (a manager's inbox, a notification) needs no call back."""
    data = {k: _get(request, k) for k in _REQUEST_FACTS}
    data["changes"] = dict(data["changes"] or {})
    data["customer_code"] = _get(customer, "code")
    data["customer_owner_id"] = _get(customer, "owner_id")
    return data


def change_request_event(request: Any, customer: Any) -> tuple[str, uuid.UUID, dict[str, Any]]:
    """(type, subject, data) of the event that tells the request's current status."""
    data = change_request(request, customer)
    return CHANGE_REQUEST_EVENTS[data["status"]], data["id"], data


def status_changed(
    customer: Any,
    from_state: str,
    since: datetime,
    actor_id: str | None,
    **facts: Any,
) -> dict[str, Any]:
    """`customer.dormant`, `customer.lost`, `customer.reactivated`: the new state holds since
    `since` (also `occurred_at`); `from_state` is the state left."""
    return {
        **customer_facts(customer),
        "from_state": from_state,
        "since": since,
        "changed_by": actor_id,
        **facts,
        "occurred_at": since,
    }


def settings_changed(doc: dict[str, Any], version: int, actor_id: str | None) -> dict[str, Any]:
    return {**doc, "version": version, "changed_by": actor_id}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key)


def _stamped(data: dict[str, Any]) -> dict[str, Any]:
    if "occurred_at" not in data:
        data["occurred_at"] = utcnow()
    return data


async def emit(
    session: AsyncSession, type_: str, subject: uuid.UUID | None, data: dict[str, Any]
) -> None:
    """One event; `occurred_at` is now unless the payload says otherwise."""
    await record_event(session, type_, subject, _stamped(data))


async def emit_many(
    session: AsyncSession, events: Sequence[tuple[str, uuid.UUID, dict[str, Any]]]
) -> None:
    """Many events in one round trip (bulk transfers, import), in the order given."""
    await record_events(session, [(t, s, _stamped(d)) for t, s, d in events])
