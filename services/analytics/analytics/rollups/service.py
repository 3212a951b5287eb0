"""Keeping the rollups exact: a record's contribution before and after a change, and the
difference added (see `contributions`); the rebuild from the fact tables."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts import repository as facts
from analytics.periods import Kind, containing, starts
from analytics.rollups import repository
from analytics.rollups.contributions import (
    Contribution,
    CustomerFacts,
    derive,
    difference,
)


async def lock(session: AsyncSession) -> None:
    """Taken first by every feed handler that changes the rollups (see the repository)."""
    await repository.lock(session)


def _derive_all(found: dict[uuid.UUID, CustomerFacts], window: int) -> Contribution:
    out = Contribution()
    for customer in found.values():
        out.add(derive(customer, active_window_days=window))
    return out


async def refresh_customers(
    session: AsyncSession,
    customer_ids: Iterable[uuid.UUID],
    window: int,
    change: Callable[[], Awaitable[None]],
) -> None:
    """Run `change` (which changes these customers' facts) and bring the rollups along."""
    ids = set(customer_ids)
    before = _derive_all(await facts.customer_facts(session, ids), window)
    await change()
    await facts.refresh_paid(session, ids)
    found = await facts.customer_facts(session, ids)
    await facts.set_first_orders(session, [_first(c) for c in found.values()])
    await repository.apply(session, difference(before, _derive_all(found, window)))


def _first(customer: CustomerFacts) -> dict[str, Any]:
    first = customer.first_order()
    return {
        "id": customer.id,
        "first_order_id": None if first is None else first.id,
        "first_order_day": None if first is None else first.day,
        "first_owner_id": None if first is None else first.who.rep_id,
        "first_team_id": None if first is None else first.who.team_id,
        "first_region": None if first is None else first.who.region,
    }


async def count_visited(
    session: AsyncSession, fresh: Sequence[dict[str, Any]], delta: Contribution
) -> None:
    """The customers these newly applied visits make "visited" in a named period (those with
    no other completed visit there), for the company's per-period counts, and per team (no
    other completed visit of that team there) for the teams' (added to `delta.teams`)."""
    seen: set[tuple[Kind, date, uuid.UUID, uuid.UUID | None]] = set()
    candidates: list[tuple[Kind, date, date, uuid.UUID, uuid.UUID | None]] = []
    for row in fresh:
        for kind, start in starts(row["day"]):
            end = containing(kind, row["day"]).end
            for team in {None, row["team_id"]}:
                if (kind, start, row["customer_id"], team) not in seen:
                    seen.add((kind, start, row["customer_id"], team))
                    candidates.append((kind, start, end, row["customer_id"], team))
    for n in await repository.first_visits(session, candidates, [r["id"] for r in fresh]):
        kind, start, _, _, team = candidates[n]
        if team is None:
            counts = delta.period[(kind, start)]
            counts["visited"] = counts.get("visited", 0) + 1
        else:
            counts = delta.teams[(kind, start, team)]
            counts["visited"] = counts.get("visited", 0) + 1


async def contribution_of(
    session: AsyncSession, customer_ids: Iterable[uuid.UUID], window: int
) -> Contribution:
    """What these customers' facts contribute now (before and after a change of the facts
    that does not go through `refresh_customers`, such as a re-engaging visit)."""
    return _derive_all(await facts.customer_facts(session, customer_ids), window)


async def apply(session: AsyncSession, delta: Contribution) -> None:
    await repository.apply(session, delta)


async def rebuild(session: AsyncSession, window: int) -> None:
    """Every rollup again from the fact tables, set-based: what `contributions.derive` gives
    each customer event by event, as aggregates over the fact tables (the customers' first
    orders set as `set_first_orders` does, their last visits as `mark_visited` does); the
    visits' and plan items' flows and visited customers likewise. A replay from zero and a
    rebuild give the same rows."""
    await repository.clear(session)
    await repository.rebuild_first_orders(session)
    await facts.mark_visited(session, None)
    await repository.rebuild_customer_flows(session, window)
    await repository.rebuild_customer_periods(session)
    await repository.rebuild_visit_flows(session)
    await repository.rebuild_team_visited(session)
    await repository.rebuild_visited(session)
