"""Fixtures of the analytics service tests: the app through the kit's harness, on a fresh copy of
the migrated template, its directory loaded with the standard organisation (`org`).

`world`: a small hand-built world for the KPI tests, announced on the stand-in feeds with
the payloads the producers write (customers' archive and commerce events, visits' visit log
and plans,
opportunities' leads and pipeline), and the figures it must give, worked out by hand.

November 2026 (21 working days, 30/7 weeks), team north (rep_a, rep_b; north_sub's rep_sub):
- C1 (A, east, rep_a) since October, ordered in October (100) and November (300): repeats.
- C2 (B, east, rep_a) created in November, first order in November (200), paid 150 on
  1 December: the order and its payment in different periods.
- C3 created in November and marked invalid: counts nowhere.
- C4 (A, west) created by rep_a in November, handed to rep_b on 2 December; its first
  order (500) in November already carries rep_b: a customer that changed owner.
- C5 (C, east, rep_a) ordered in February, went dormant, was visited on 12 November and
  ordered (120) on the 14th: re-engaged and redeveloped.
- C6 (rep_b) created in November, never ordered; C7 (rep_b) ordered 40 in June.
- rep_a's four completed visits (C1 twice, C2, C5); a plan of two items, one fulfilled.
- three leads: one contacted, converted and won (1000, in 15 days), one invalid, one idle;
  a second opportunity lost from qualification.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from analytics.config import Settings
from analytics.main import spec
from analytics.rollups.models import PERIOD_COUNTS, PERIOD_SALES, PERIOD_TEAM_COUNTS
from analytics.rollups.repository import DAILY
from servicekit.testing.harness import ServiceClient, service_fixture
from servicekit.testing.org import Org


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class World:
    org: Org
    ids: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.ids.setdefault(name, _id())

    def who(self, rep: str) -> dict[str, Any]:
        person = self.org.people[rep]
        return {"owner_id": person.sub, "team_id": person.team_id}


def customer(world: World, name: str, rep: str, **facts: Any) -> dict[str, Any]:
    """customers' `customer_facts` and what `created` adds."""
    data = {
        "id": world[name],
        "code": f"C-{name}",
        "name": f"Customer {name}",
        "region": "east",
        "level": "B",
        "status": "active",
        **world.who(rep),
        "industry": None,
        "phone": None,
        "email": None,
        "source": "manual",
        "estimated_potential": None,
        "version": 1,
        "tags": [],
        "created_by": world.org.people[rep].sub,
    }
    data.update(facts)
    return data


def order(
    world: World, name: str, customer_data: dict[str, Any], day: str, amount: str, gp: str | None
) -> dict[str, Any]:
    """commerce's `order_payload`."""
    return {
        "customer_id": customer_data["id"],
        "customer_code": customer_data["code"],
        "owner_id": customer_data["owner_id"],
        "team_id": customer_data["team_id"],
        "region": customer_data["region"],
        "level": customer_data["level"],
        "order_id": world[name],
        "order_date": day,
        "amount": amount,
        "gross_profit": gp,
        "due_date": None,
        "lines": [{"product": "widget", "quantity": "1", "unit_price": amount, "amount": amount}],
        "source": "manual",
        "external_ref": None,
    }


def payment(
    world: World, name: str, order_data: dict[str, Any], day: str, amount: str
) -> dict[str, Any]:
    """commerce's `payment_payload`."""
    keep = ("customer_id", "customer_code", "owner_id", "team_id", "region", "level")
    return {
        **{k: order_data[k] for k in keep},
        "payment_id": world[name],
        "order_id": order_data["order_id"],
        "order_date": order_data["order_date"],
        "order_amount": order_data["amount"],
        "amount": amount,
        "received_on": day,
        "method": "transfer",
        "source": "manual",
        "external_ref": None,
        "paid_amount": amount,
        "outstanding_amount": "0",
    }


def visit(
    world: World,
    name: str,
    rep: str,
    customer_data: dict[str, Any],
    day: str,
    *,
    effective: bool,
    order_taken: bool,
    status: str = "active",
    plan_item: str | None = None,
) -> dict[str, Any]:
    """visits' `visitlog.events.completed`."""
    person = world.org.people[rep]
    return {
        "id": world[name],
        "rep_id": person.sub,
        "rep_name": rep,
        "team_id": person.team_id,
        "customer_id": customer_data["id"],
        "customer_code": customer_data["code"],
        "customer_name": customer_data["name"],
        "region": customer_data["region"],
        "level": customer_data["level"],
        "customer_status": status,
        "customer_owner_id": customer_data["owner_id"],
        "customer_team_id": customer_data["team_id"],
        "contact_id": None,
        "purpose": "follow_up",
        "channel": "in_person",
        "plan_item_id": None if plan_item is None else world[plan_item],
        "plan_id": None,
        "status": "completed",
        "check_in_at": f"{day}T02:00:00+00:00",
        "check_out_at": f"{day}T03:00:00+00:00",
        "visit_date": day,
        "distance_m": 12,
        "far_from_customer": False,
        "effective": effective,
        "order_taken": order_taken,
        "order_amount": "0",
        "collected_amount": "0",
        "expenses_total": "0",
        "memo": "talked",
        "next_step": None,
        "next_visit_on": None,
        "competitor_news": None,
        "customer_feedback": None,
        "completed_at": f"{day}T03:00:00+00:00",
    }


def lead(world: World, name: str, rep: str, received: str, status: str) -> dict[str, Any]:
    """opportunities' `leads.events.facts`."""
    return {
        "id": world[name],
        "source": "web_form",
        "status": status,
        "region": "east",
        **world.who(rep),
        "customer_id": None,
        "received_at": f"{received}T01:00:00+00:00",
        "score": 70,
        "qualified": True,
        "version": 1,
        "amount": None,
    }


def opportunity(
    world: World, name: str, rep: str, created: str, stage: str, **more: Any
) -> dict[str, Any]:
    """opportunities' `pipeline.events.facts`."""
    return {
        "id": world[name],
        "customer_id": None,
        "lead_id": None,
        "name": name,
        **world.who(rep),
        "source": "web_form",
        "region": "east",
        "amount": None,
        "stage": stage,
        "expected_close_on": None,
        "created_at": f"{created}T01:00:00+00:00",
        "closed_at": None,
        "won_at": None,
        "version": 1,
        "probability": 10,
        **more,
    }


async def build(svc: ServiceClient, org: Org) -> World:
    w = World(org)
    assert svc.feeds is not None
    feeds = svc.feeds

    def announce(source: str, type_: str, data: dict[str, Any]) -> None:
        feeds.publish(type_, str(data["id"]) if "id" in data else None, data, source=source)

    async def customers(type_: str, **data: Any) -> None:
        announce("customers", type_, data)

    c1 = customer(w, "C1", "rep_a", level="A", created_at="2026-10-05T01:00:00+00:00")
    c2 = customer(w, "C2", "rep_a", created_at="2026-11-03T01:00:00+00:00")
    c3 = customer(w, "C3", "rep_a", created_at="2026-11-04T01:00:00+00:00")
    c4 = customer(w, "C4", "rep_a", level="A", region="west", created_at="2026-11-02T01:00:00Z")
    c5 = customer(w, "C5", "rep_a", level="C", created_at="2026-01-10T01:00:00+00:00")
    c6 = customer(w, "C6", "rep_b", created_at="2026-11-25T01:00:00+00:00")
    c7 = customer(w, "C7", "rep_b", created_at="2026-06-01T01:00:00+00:00")
    for c in (c1, c2, c3, c4, c5, c6, c7):
        await customers("customer.created", **c)
    await customers("customer.invalidated", **{**c3, "status": "invalid", "reason": "fake"})

    o1 = order(w, "O1", c1, "2026-10-10", "100.00", "30.00")
    o2 = order(w, "O2", c1, "2026-11-05", "300.00", "90.00")
    o3 = order(w, "O3", c2, "2026-11-10", "200.00", "50.00")
    o5 = order(w, "O5", c5, "2026-02-01", "80.00", "10.00")
    o7 = order(w, "O7", c7, "2026-06-15", "40.00", "5.00")
    for o in (o1, o2, o3, o5, o7):
        await customers("order.placed", **o)
    await customers("customer.dormant", **{**c5, "status": "dormant"})
    o6 = order(w, "O6", {**c5, "status": "dormant"}, "2026-11-14", "120.00", "20.00")
    await customers("order.placed", **o6)
    # C4 goes to rep_b; its first order, placed afterwards, carries its new owner.
    c4_now = {**c4, **w.who("rep_b")}
    await customers(
        "customer.owner_changed",
        **c4_now,
        old_owner_id=c4["owner_id"],
        old_team_id=c4["team_id"],
        in_pool=False,
        reason="handover",
        kind="transfer",
        changed_by=org.people["manager_north"].sub,
    )
    await customers("order.placed", **order(w, "O4", c4_now, "2026-11-20", "500.00", "100.00"))
    await customers("payment.received", **payment(w, "P2", o2, "2026-11-06", "300.00"))
    await customers("payment.received", **payment(w, "P1", o3, "2026-12-01", "150.00"))

    rep_a = org.people["rep_a"]
    plan = {
        "id": w["plan"],
        "rep_id": rep_a.sub,
        "rep_name": "rep_a",
        "team_id": rep_a.team_id,
        "plan_date": "2026-11-10",
        "area": "east",
        "status": "approved",
        "version": 2,
        "item_count": 2,
        "items": [
            {
                "id": w[item],
                "customer_id": c["id"],
                "customer_code": c["code"],
                "purpose": "follow_up",
                "slot_start": None,
                "slot_end": None,
            }
            for item, c in (("I1", c2), ("I2", c1))
        ],
        "decided_by": org.people["manager_north"].sub,
        "decided_at": "2026-11-09T09:00:00+00:00",
        "comment": None,
    }
    announce("visits", "visit_plan.approved", plan)
    for v in (
        visit(w, "V1", "rep_a", c1, "2026-11-05", effective=True, order_taken=True),
        visit(w, "V2", "rep_a", c1, "2026-11-18", effective=False, order_taken=False),
        visit(w, "V3", "rep_a", c2, "2026-11-10", effective=True, order_taken=True, plan_item="I1"),
        visit(
            w, "V4", "rep_a", c5, "2026-11-12", effective=True, order_taken=False, status="dormant"
        ),
    ):
        announce("visits", "visit.completed", v)

    async def opps(type_: str, **data: Any) -> None:
        announce("opportunities", type_, data)

    await opps("lead.received", **lead(w, "L1", "rep_a", "2026-11-03", "assigned"))
    await opps("lead.received", **lead(w, "L2", "rep_a", "2026-11-06", "assigned"))
    await opps("lead.received", **lead(w, "L3", "rep_a", "2026-11-07", "assigned"))
    await opps(
        "lead.contacted",
        **lead(w, "L1", "rep_a", "2026-11-03", "contacted"),
        at="2026-11-04T01:00:00Z",
    )
    await opps("lead.invalidated", **lead(w, "L2", "rep_a", "2026-11-06", "invalid"))
    op1 = opportunity(w, "OP1", "rep_a", "2026-11-05", "qualification", lead_id=w["L1"])
    await opps("opportunity.created", **op1)
    await opps(
        "lead.converted",
        **lead(w, "L1", "rep_a", "2026-11-03", "converted"),
        at="2026-11-05T01:00:00+00:00",
        contacted_at="2026-11-04T01:00:00+00:00",
        opportunity_id=w["OP1"],
    )
    won = {
        **op1,
        "stage": "won",
        "amount": "1000.00",
        "closed_at": "2026-11-20T01:00:00+00:00",
        "won_at": "2026-11-20T01:00:00+00:00",
    }
    await opps(
        "opportunity.stage_changed",
        **won,
        from_stage="qualification",
        to_stage="won",
        backward=False,
    )
    await opps("opportunity.won", **won, cycle_days=15)
    op2 = opportunity(w, "OP2", "rep_a", "2026-11-06", "qualification")
    await opps("opportunity.created", **op2)
    lost = {**op2, "stage": "lost", "closed_at": "2026-11-21T01:00:00+00:00"}
    await opps(
        "opportunity.stage_changed",
        **lost,
        from_stage="qualification",
        to_stage="lost",
        backward=False,
    )
    await svc.sync_feeds()
    return w


analytics = service_fixture("analytics", spec, Settings)


@pytest.fixture
async def world(analytics: ServiceClient, org: Org) -> World:
    return await build(analytics, org)


@pytest.fixture
def rollup_rows(analytics: ServiceClient) -> Callable[[], Awaitable[dict[str, list[Any]]]]:
    """Every rollup table's rows in key order (rows whose measures all came back to zero are
    the same as no row)."""
    tables = (*DAILY.values(), PERIOD_COUNTS, PERIOD_TEAM_COUNTS, PERIOD_SALES)

    async def rows() -> dict[str, list[Any]]:
        async with analytics.session() as s:
            found = {}
            for t in tables:
                keys = len(t.primary_key.columns)
                stmt = sa.select(t).order_by(*t.primary_key.columns)
                found[t.name] = [tuple(r) for r in await s.execute(stmt) if any(r[keys:])]
            return found

    return rows


@pytest.fixture
def payloads() -> SimpleNamespace:
    """The producers' payload builders above, for a test that grows the world (test modules
    cannot import this conftest: the repository's root conftest holds the name)."""
    return SimpleNamespace(
        World=World,
        customer=customer,
        order=order,
        payment=payment,
        visit=visit,
        lead=lead,
        opportunity=opportunity,
    )
