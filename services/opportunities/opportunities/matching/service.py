"""Which customer a lead belongs to.

How this service knows the customers: a read model of its own, `customer_index`, fed by the
customers service's event feed (`/api/v1/events/customers`, followed with the kit's
`EventConsumer` like the identity directory), holding for each customer its normal forms
(`servicekit.normalize`, the very functions the customers service finds duplicates with).
Chosen over calling the customers API because intake matches up to 10,000 leads per call
inside one transaction: three indexed statements here against a round trip per lead there,
for integrations' API keys that have no right to read customers at all (matching is not
reading on the caller's behalf), and intake keeps working while the customers service is
down. The price is lag: a customer created a moment ago may not be matched yet. Conversion
does not depend on it: it creates the customer through the customers API, whose own
duplicate check is authoritative.

A lead matches a customer on the customers service's rules: the same normalised phone, or
email, or the same normalised name in the same region; an active customer only. Phone wins
over email, email over name; among several customers on one rule, the lowest code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.matching import repository
from servicekit.auth import Principal, sees_customer
from servicekit.db import utcnow
from servicekit.normalize import (
    MatchKeys,
    lookups,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_region,
)
from servicekit.outbox import Event

SOURCE = "customers"
# The customers service's event types (customers/archive/events.py); each carries the facts.
CUSTOMER_EVENTS = frozenset(
    {
        "customer.created",
        "customer.updated",
        "customer.level_changed",
        "customer.owner_changed",
        "customer.merged",
        "customer.invalidated",
    }
)


async def apply_customer_event(session: AsyncSession, event: Event) -> None:
    """The consumer's handler: keep the customer's facts and normal forms."""
    if event.type not in CUSTOMER_EVENTS:
        return
    data = event.data
    try:
        customer_id = uuid.UUID(str(data["id"]))
    except (KeyError, ValueError):
        return  # not a customer's payload: nothing to index
    region = data.get("region")
    await repository.upsert(
        session,
        {
            "id": customer_id,
            "code": data.get("code"),
            "name": data.get("name") or "",
            "region": normalize_region(region) if region else None,
            "status": data.get("status") or "active",
            "owner_id": _uuid(data.get("owner_id")),
            "team_id": _uuid(data.get("team_id")),
            "normalized_name": normalize_name(data.get("name")),
            "normalized_phone": normalize_phone(data.get("phone")),
            "normalized_email": normalize_email(data.get("email")),
            "version": int(data.get("version") or 0),
            "updated_at": utcnow(),
        },
    )


async def visible_to(session: AsyncSession, principal: Principal, customer_id: uuid.UUID) -> bool:
    """May the caller see this customer, as the index last heard of it (the customers' own
    rule, from the kit)? An unknown customer: no."""
    row = await repository.owner_and_team(session, customer_id)
    return row is not None and sees_customer(principal, row.owner_id, row.team_id)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return None if value is None else uuid.UUID(str(value))
    except ValueError:
        return None


async def match_customers(
    session: AsyncSession, keys: Sequence[MatchKeys]
) -> list[uuid.UUID | None]:
    """The customer each of `keys` belongs to, or None: one statement for the whole batch."""
    rows = await repository.candidates(session, *lookups(keys, ordered=False))
    if not rows:
        return [None] * len(keys)
    by_phone: dict[str, Any] = {}
    by_email: dict[str, Any] = {}
    by_name: dict[tuple[str, str], Any] = {}
    for r in sorted(rows, key=lambda r: (r.code or "", r.id)):
        if r.normalized_phone:
            by_phone.setdefault(r.normalized_phone, r.id)
        if r.normalized_email:
            by_email.setdefault(r.normalized_email, r.id)
        if r.normalized_name and r.region:
            by_name.setdefault((r.region, r.normalized_name), r.id)
    out: list[uuid.UUID | None] = []
    for k in keys:
        found = (
            (by_phone.get(k.phone) if k.phone else None)
            or (by_email.get(k.email) if k.email else None)
            or (by_name.get((k.region, k.name)) if k.name and k.region else None)
        )
        out.append(found)
    return out
