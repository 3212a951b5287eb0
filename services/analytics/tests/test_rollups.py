"""The set-based rebuild of the rollups gives exactly what each customer's contribution derived
in Python (`contributions.derive`, the event-by-event path) gives, on a random world of facts
that has what the hand-built one lacks: several versions of a customer on one day, cancelled
orders, reversed payments, gaps between orders longer and shorter than the active window,
levels that come and go, facts without a rep, a team or a region, and orders and payments of
customers the read model does not know."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from analytics.facts import repository as facts
from analytics.facts.models import CUSTOMER_VERSIONS, CUSTOMERS, ORDERS, PAYMENTS, VISITS
from analytics.rollups import repository, service

WINDOW = 20  # days: short, so that orders' windows both merge and leave gaps


def _random_world(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    reps = [uuid.uuid4() for _ in range(4)] + [None]
    teams = [uuid.uuid4() for _ in range(2)] + [None]
    regions = ["east", "west", "", None]
    first = date(2026, 1, 1)

    def day() -> date:
        return first + timedelta(days=rng.randrange(200))

    def who(prefix: str = "") -> dict[str, Any]:
        return {
            f"{prefix}owner_id": rng.choice(reps),
            f"{prefix}team_id": rng.choice(teams),
            f"{prefix}region": rng.choice(regions),
        }

    def at(d: date) -> datetime:
        return datetime.combine(d, time(9), UTC)

    world: dict[str, list[dict[str, Any]]] = {"customers": [], "versions": [], "orders": []}
    world["payments"], world["visits"] = [], []
    known = [uuid.uuid4() for _ in range(60)]
    for n, cid in enumerate(known):
        created = None if n % 9 == 0 else day()
        world["customers"].append(
            {
                "id": cid,
                "status": rng.choice(["active", "active", "dormant", "lost", "invalid", "merged"]),
                "created_day": created,
                **who("created_"),
                "updated_at": at(first),
            }
        )
        for _ in range(rng.randrange(5)):
            d = day() if rng.random() < 0.7 or created is None else created
            world["versions"].append(
                {
                    "event_id": uuid.uuid4(),
                    "customer_id": cid,
                    "at": at(d),
                    "day": d,
                    **who(),
                    "level": rng.choice(["A", "A", "B", None]),
                    "status": "active",
                }
            )
    for cid in [*known, uuid.uuid4(), uuid.uuid4()]:  # two customers nobody announced
        for _ in range(rng.randrange(7)):
            oid, d = uuid.uuid4(), day()
            amount = Decimal(rng.randrange(100, 100_000)) / 100
            world["orders"].append(
                {
                    "id": oid,
                    "customer_id": cid,
                    "day": d,
                    **who(),
                    "amount": amount,
                    "gross_profit": None if rng.random() < 0.2 else amount / 4,
                    "cancelled": rng.random() < 0.2,
                    # Stale on purpose: the rebuild sets each customer's first order.
                    "first": rng.random() < 0.5,
                }
            )
            for _ in range(rng.randrange(3)):
                world["payments"].append(
                    {
                        "id": uuid.uuid4(),
                        "order_id": oid,
                        "customer_id": cid,
                        "day": d + timedelta(days=rng.randrange(40)),
                        **who(),
                        "amount": (amount / 3).quantize(Decimal("0.01")),
                        "reversed": rng.random() < 0.2,
                    }
                )
        for _ in range(rng.randrange(4)):
            d = day()
            world["visits"].append(
                {
                    "id": uuid.uuid4(),
                    "rep_id": rng.choice(reps[:-1]),
                    "team_id": rng.choice(teams),
                    "customer_id": cid,
                    "region": rng.choice(regions),
                    "customer_status": rng.choice(["active", "dormant", "lost", None]),
                    "day": d,
                    "check_in_at": at(d),
                    "effective": rng.random() < 0.5,
                    "order_taken": rng.random() < 0.3,
                }
            )
    return world


async def _first_orders(analytics: Any) -> tuple[list[Any], list[Any]]:
    c, o = CUSTOMERS.c, ORDERS.c
    async with analytics.session() as s:
        customers = await s.execute(
            sa.select(
                c.id, c.first_order_id, c.first_order_day, c.first_owner_id, c.first_team_id
            ).order_by(c.id)
        )
        orders = await s.execute(sa.select(o.id, o.first).order_by(o.id))
        return [tuple(r) for r in customers], [tuple(r) for r in orders]


async def test_the_set_based_rebuild_equals_every_customers_derived_contribution(
    analytics, rollup_rows
):
    for seed in (1, 2, 3):
        world = _random_world(random.Random(seed))
        async with analytics.session() as s:
            for table in (CUSTOMERS, CUSTOMER_VERSIONS, ORDERS, PAYMENTS, VISITS):
                await s.execute(sa.delete(table))
            for table, rows in (
                (CUSTOMERS, world["customers"]),
                (CUSTOMER_VERSIONS, world["versions"]),
                (ORDERS, world["orders"]),
                (PAYMENTS, world["payments"]),
                (VISITS, world["visits"]),
            ):
                if rows:
                    await s.execute(sa.insert(table), rows)

        async with analytics.session() as s:
            await service.rebuild(s, WINDOW)
        rebuilt, firsts = await rollup_rows(), await _first_orders(analytics)
        assert rebuilt["daily_company"] and rebuilt["period_sales"], seed
        # Each customer's last visit, as the visits feed keeps it.
        last: dict[Any, Any] = {c["id"]: None for c in world["customers"]}
        for v in world["visits"]:
            if v["customer_id"] in last:
                last[v["customer_id"]] = max(filter(None, (last[v["customer_id"]], v["day"])))
        async with analytics.session() as s:
            kept = await s.execute(sa.select(CUSTOMERS.c.id, CUSTOMERS.c.last_visit_day))
            assert dict(kept.all()) == last, seed

        # The same facts, each customer's contribution derived in Python and its first
        # order set as the feeds set it.
        async with analytics.session() as s:
            await repository.clear(s)
            ids = [c["id"] for c in world["customers"]]
            o = ORDERS.c
            await s.execute(sa.update(ORDERS).where(o.customer_id.in_(ids)).values(first=~o.first))
            await s.execute(sa.update(CUSTOMERS).values(first_order_id=None, first_order_day=None))
            found = await facts.customer_facts(s, ids)
            await facts.set_first_orders(s, [service._first(c) for c in found.values()])
            await service.apply(s, await service.contribution_of(s, ids, WINDOW))
            await repository.rebuild_visit_flows(s)
            await repository.rebuild_team_visited(s)
            await repository.rebuild_visited(s)
        assert await rollup_rows() == rebuilt, seed
        assert await _first_orders(analytics) == firsts, seed
