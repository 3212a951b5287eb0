"""The role x record x operation matrix, through the real gateway: every public operation of
the customers service, the main ones of opportunities (leads, the pipeline, scoring) and the
event feeds, as an admin, the manager of the record's team, the manager of another team, the
owning rep, another rep, and API keys with each scope, asserting
what each may do (ok, or the list shows the record), what they are told nothing of (404, or
the list leaves the record out) and what they are refused (403).

The services' own tests check their rules one by one; this is the cross-check that catches a
hole where two rules meet (a section of a composite answer, a key's scope on a sub-resource,
a new endpoint without a rule). It also keeps docs/access.md honest: for every operation, the
key scopes the table names are exactly those the matrix lets through.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ok, organisation, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "matrix-" + uuid.uuid4().hex[:10]
CUSTOMERS = "/api/v1/customers"
DOC = Path(__file__).resolve().parents[1] / "docs" / "access.md"

PEOPLE = ("admin", "manager", "other_manager", "owner", "other_rep")
# One key per scope (named by it); `kpis:read` stands for any scope of another area.
KEY_SCOPES = (
    "customers:read",
    "customers:write",
    "orders:read",
    "orders:write",
    "leads:read",
    "leads:write",
    "opportunities:read",
    "opportunities:write",
    "scoring:read",
    "visits:read",
    "visits:write",
    "events:customers",
    "events:identity",
    "events:read",
    "kpis:read",
)
CALLERS = PEOPLE + KEY_SCOPES

OK, SEEN, HIDDEN = "ok", "seen", "hidden"
# People under the record rules: the owner's manager and the admin see and change, the others
# are told nothing (404).
RECORD = {"admin": OK, "manager": OK, "other_manager": 404, "owner": OK, "other_rep": 404}
LISTED = {
    "admin": SEEN,
    "manager": SEEN,
    "other_manager": HIDDEN,
    "owner": SEEN,
    "other_rep": HIDDEN,
}
# The same, where the answer is checked for a part of the record.
RECORD_SHOWS = {**LISTED, "other_manager": 404, "other_rep": 404}
NOBODY = dict.fromkeys(PEOPLE, 403)
# A paid order, to who may change it: refused as paid (409); to the others, not there.
PAID = {**RECORD, "admin": 409, "manager": 409, "owner": 409}
ADMIN_ONLY = {**NOBODY, "admin": OK}


def keys(*allowed: str, outcome: Any = OK) -> dict[str, Any]:
    """The keys' outcomes: `outcome` for the scopes allowed, 403 for every other."""
    return {scope: outcome if scope in allowed else 403 for scope in KEY_SCOPES}


CUSTOMERS_READ = ("customers:read", "customers:write")
ORDERS_READ = ("orders:read", "orders:write")
OPPORTUNITIES_READ = ("opportunities:read", "opportunities:write")
LEADS_READ = ("leads:read", "leads:write")
VISITS_READ = ("visits:read", "visits:write")
VISITS = "/api/v1/visits"
PLANS = "/api/v1/visit-plans"
REPORTS = "/api/v1/daily-reports"
CASES = {"complaint": "/api/v1/complaints", "market": "/api/v1/market-reports"}
# One plan and one daily report per rep per day: each record made in a run has a day of its
# own (plans in the future, reports in the past).
_DAYS = itertools.count()
LEADS = "/api/v1/leads"
PRODUCTS = "/api/v1/products"
TODAY = datetime.now(UTC).date().isoformat()
OPPORTUNITIES = "/api/v1/opportunities"


@dataclass
class Records:
    """What a cell acts on: a customer of the owner and, as the operation needs them, its
    contact, an order with a payment, a pending change request by the owner, a pool customer,
    a second customer of the owner (merges), a lead assigned to the owner, an opportunity of
    the owner and a lost one. `region` is this run's own, so lists filtered by it hold only
    this run's records."""

    customer: dict[str, Any]
    region: str
    settings: dict[str, Any]  # the archive's settings as they are (PUT puts them back)
    contact: str = ""
    order: str = ""
    request: str = ""
    pool: str = ""
    other: str = ""
    lead: dict[str, Any] = field(default_factory=dict)
    opportunity: dict[str, Any] = field(default_factory=dict)
    lost: str = ""
    visit: str = ""
    payment: str = ""
    product: str = ""
    # The owner's visit plans (submitted; a draft) and daily reports (submitted; returned).
    plan: dict[str, Any] = field(default_factory=dict)
    draft_plan: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    returned_report: dict[str, Any] = field(default_factory=dict)
    # The owner's cases about the customer by kind, open and resolved.
    cases: dict[str, str] = field(default_factory=dict)
    alert: str = ""  # an alert about the owner (shared records only)


PARTS = (
    "contact",
    "order",
    "request",
    "pool",
    "other",
    "lead",
    "opportunity",
    "lost",
    "visit",
    "product",
    "plan",
    "report",
    "complaint",
    "market",
)


@dataclass
class World:
    gw: httpx.AsyncClient
    headers: dict[str, dict[str, str]]  # caller -> its headers
    users: dict[str, dict[str, Any]]
    region: str
    settings: dict[str, Any] = field(default_factory=dict)
    shared: Records | None = None

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    async def customer(self, **fields: Any) -> dict[str, Any]:
        body = {
            "name": f"Matrix {uuid.uuid4().hex[:10]}",
            "region": self.region,
            "owner_id": self.users["owner"]["id"],
            "estimated_potential": "5000000.00",  # proposed level A, level C: a proposal
            **fields,
        }
        resp = await self.gw.post(
            CUSTOMERS, json=body, params={"confirm_duplicates": "true"}, headers=self.admin
        )
        return await ok(resp, 201)  # type: ignore[no-any-return]

    async def post(self, path: str, body: Any, status: int = 201, **headers: str) -> Any:
        return await ok(
            await self.gw.post(path, json=body, headers={**self.admin, **headers}), status
        )

    async def records(self, parts: tuple[str, ...] = PARTS) -> Records:
        c = await self.customer()
        r = Records(c, self.region, self.settings)
        if "contact" in parts:
            r.contact = (await self.post(f"{CUSTOMERS}/{c['id']}/contacts", {"name": "Li Wei"}))[
                "id"
            ]
        if "order" in parts:
            # Dated today: an order older than the dormancy days leaves its customer dormant
            # (a new version), and the change request below is filed against version 1.
            order = {"order_date": TODAY, "amount": "1000.00"}
            r.order = (await self.post(f"{CUSTOMERS}/{c['id']}/orders", order))["id"]
            payment = {"amount": "1.00", "received_on": TODAY}
            r.payment = (await self.post(f"/api/v1/orders/{r.order}/payments", payment))["id"]
        if "request" in parts:
            filed = await self.gw.patch(
                f"{CUSTOMERS}/{c['id']}",
                json={"level": "A"},
                headers={**self.headers["owner"], "If-Match": '"1"'},
            )
            r.request = (await ok(filed, 202))["id"]
        if "pool" in parts:
            r.pool = (await self.customer(owner_id=None))["id"]
        if "other" in parts:
            r.other = (await self.customer())["id"]
        if "lead" in parts:
            lead = {"source": "web_form", "company": f"Lead {uuid.uuid4().hex[:10]}"}
            pushed = await self.post(LEADS, lead)
            owner = {"owner_id": self.users["owner"]["id"]}
            r.lead = await self.post(f"{LEADS}/{pushed['id']}/assign", owner, 200)
        if "opportunity" in parts:
            body = {
                "customer_id": c["id"],
                "name": f"Deal {uuid.uuid4().hex[:8]}",
                "owner_id": self.users["owner"]["id"],
            }
            r.opportunity = await self.post(OPPORTUNITIES, body)
        if "lost" in parts:
            body = {
                "customer_id": c["id"],
                "name": f"Lost {uuid.uuid4().hex[:8]}",
                "owner_id": self.users["owner"]["id"],
            }
            lost = await self.post(OPPORTUNITIES, body)
            move = {"stage": "lost", "lost_reason": "price"}
            r.lost = (await self.post(f"{OPPORTUNITIES}/{lost['id']}/stage", move, 200))["id"]
        if "visit" in parts:
            r.visit = await self.visit(c["id"])
        if "product" in parts:
            product = {"sku": f"MX-{uuid.uuid4().hex[:10]}", "name": "Matrix paper"}
            r.product = (await self.post(PRODUCTS, product))["id"]
        await self.visits_records(r, parts)
        return r

    async def visits_records(self, r: Records, parts: tuple[str, ...]) -> None:
        """The owner's plans, reports and cases (as `parts` asks), once the visits service has
        heard of the customer."""
        owner, customer = self.headers["owner"], r.customer["id"]
        if "plan" in parts or "draft_plan" in parts:
            plan = await self.plan(customer)
            if "draft_plan" in parts:
                r.draft_plan = plan
            else:
                submitted = await self.gw.post(f"{PLANS}/{plan['id']}/submit", headers=owner)
                r.plan = await ok(submitted)
        if "report" in parts or "returned_report" in parts:
            day = (date(2001, 1, 1) + timedelta(days=next(_DAYS))).isoformat()
            report = await ok(
                await self.gw.post(REPORTS, json={"report_date": day}, headers=owner), 201
            )
            if "returned_report" in parts:
                back = {"comment": "matrix: more detail"}
                r.returned_report = await ok(
                    await self.gw.post(
                        f"{REPORTS}/{report['id']}/return",
                        json=back,
                        headers=self.headers["manager"],
                    )
                )
            else:
                r.report = report
        for kind in CASES:
            for part in (kind, f"resolved_{kind}"):
                if part in parts:
                    r.cases[part] = await self.case(kind, customer, resolved=part != kind)

    async def plan(self, customer_id: str) -> dict[str, Any]:
        """A draft plan of the owner with one item at the customer, on a day of its own."""
        day = (date(2031, 1, 1) + timedelta(days=next(_DAYS))).isoformat()
        item = {
            "customer_id": customer_id,
            "slot_start": f"{day}T12:00:00Z",
            "slot_end": f"{day}T13:00:00Z",
            "purpose": "service",
        }
        return await self.known(PLANS, {"plan_date": day, "items": [item]})

    async def case(self, kind: str, customer_id: str, *, resolved: bool) -> str:
        body = {
            "customer_id": customer_id,
            "category": "matrix",
            "severity": "low",
            "description": "raised by the access matrix",
        }
        case = await self.known(CASES[kind], body)
        if resolved:
            done = {"resolution": "matrix: fixed"}
            path = f"{CASES[kind]}/{case['id']}/resolve"
            await ok(await self.gw.post(path, json=done, headers=self.headers["owner"]))
        return str(case["id"])

    async def known(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """What the owner's POST made, once the visits service knows the customer (a customer
        it has not heard of yet is a 422)."""
        made: dict[str, Any] = {}

        async def created() -> bool:
            resp = await self.gw.post(path, json=body, headers=self.headers["owner"])
            made.update(resp.json() if resp.status_code == 201 else {})
            return resp.status_code == 201

        await wait_for(created)
        return made

    async def visit(self, customer_id: str) -> str:
        """A completed visit the owner logged at their customer (once the visits service has
        heard of the customer from the customers feed)."""
        now = datetime.now(UTC)
        body = {
            "customer_id": customer_id,
            "channel": "phone",
            "purpose": "collection",
            "check_in_at": (now - timedelta(hours=2)).isoformat(),
            "check_out_at": (now - timedelta(hours=1)).isoformat(),
        }
        logged: dict[str, Any] = {}

        async def known() -> bool:
            resp = await self.gw.post(VISITS, json=body, headers=self.headers["owner"])
            logged.update(resp.json() if resp.status_code == 201 else {})
            return resp.status_code == 201

        await wait_for(known)
        return str(logged["id"])


@dataclass
class Op:
    """One operation: `doc` is its row in docs/access.md ("METHOD /path"), `path` the path with
    the record ids filled in, `expect` the outcome per caller."""

    doc: str
    expect: dict[str, Any]
    path: Callable[[Records], str] | None = None
    body: Callable[[Records], Any] | None = None
    params: Callable[[Records], dict[str, str]] | None = None
    headers: Callable[[Records], dict[str, str]] | None = None
    # Records of its own per cell (it changes them): the customer and these parts of it.
    fresh: tuple[str, ...] | None = None
    # For lists: the record found in the answer means SEEN.
    finds: Callable[[Records], str] | None = None

    @property
    def method(self) -> str:
        return self.doc.split()[0]

    def url(self, r: Records) -> str:
        if self.path is not None:
            return self.path(r)
        template = self.doc.split()[1]
        return template.format(
            id=r.customer["id"],
            contact_id=r.contact,
            order_id=r.order,
            request_id=r.request,
            lead_id=r.lead.get("id"),
            opportunity_id=r.opportunity.get("id"),
            visit_id=r.visit,
            payment_id=r.payment,
            product_id=r.product,
            plan_id=r.plan.get("id"),
            report_id=r.report.get("id"),
        )


def _by_id(r: Records) -> str:
    return str(r.customer["id"])


def _in_region(r: Records) -> dict[str, str]:
    return {"region": r.region, "limit": "200"}


def _new_customer(r: Records) -> dict[str, Any]:
    return {"name": f"Made {uuid.uuid4().hex[:10]}", "region": r.region}


CUSTOMER_OPS: list[Op] = [
    Op(
        "GET /api/v1/customers",
        {**LISTED, **keys(*CUSTOMERS_READ, outcome=SEEN)},
        params=_in_region,
        finds=_by_id,
    ),
    Op(
        "POST /api/v1/customers",
        {**dict.fromkeys(PEOPLE, OK), **keys("customers:write")},
        body=_new_customer,
        params=lambda r: {"confirm_duplicates": "true"},
    ),
    Op(
        "GET /api/v1/customers/lookup",
        {**RECORD, **keys(*CUSTOMERS_READ, *ORDERS_READ)},
        params=lambda r: {"code": r.customer["code"]},
    ),
    # It tells how to address the customer, nothing about it (its name, say).
    Op(
        "GET /api/v1/customers/lookup",
        {
            **{k: HIDDEN if v == SEEN else v for k, v in RECORD_SHOWS.items()},
            **keys(*CUSTOMERS_READ, *ORDERS_READ, outcome=HIDDEN),
        },
        params=lambda r: {"id": r.customer["id"]},
        finds=lambda r: str(r.customer["name"]),
    ),
    Op("GET /api/v1/customers/{id}", {**RECORD, **keys(*CUSTOMERS_READ)}),
    # Composite answers show each part by its own scope: the orders in the full file and the
    # card are for who may read orders.
    Op(
        "GET /api/v1/customers/{id}",
        {**RECORD_SHOWS, **keys(*CUSTOMERS_READ, outcome=HIDDEN)},
        finds=lambda r: r.order,
    ),
    Op(
        "GET /api/v1/customers/{id}/card",
        {**RECORD_SHOWS, **keys(*CUSTOMERS_READ, outcome=HIDDEN)},
        finds=lambda r: r.order,
    ),
    Op(
        "GET /api/v1/customers/{id}",
        {**RECORD, **keys(*CUSTOMERS_READ)},
        params=lambda r: {"as_of": "2100-01-01T00:00:00Z"},
    ),
    Op(
        "PATCH /api/v1/customers/{id}",
        {**RECORD, **keys("customers:write")},
        body=lambda r: {"industry": "matrix"},
        headers=lambda r: {"If-Match": '"1"'},
        fresh=(),
    ),
    Op("GET /api/v1/customers/{id}/card", {**RECORD, **keys(*CUSTOMERS_READ)}),
    Op("GET /api/v1/customers/{id}/history", {**RECORD, **keys(*CUSTOMERS_READ)}),
    Op("GET /api/v1/customers/{id}/ownership", {**RECORD, **keys(*CUSTOMERS_READ)}),
    Op(
        "POST /api/v1/customers/{id}/release",
        {**RECORD, **keys("customers:write")},
        body=lambda r: {"reason": "matrix"},
        fresh=(),
    ),
    # A pool customer: reps claim it; nobody else claims.
    Op(
        "POST /api/v1/customers/{id}/claim",
        {**NOBODY, "owner": OK, "other_rep": OK, **keys()},
        path=lambda r: f"{CUSTOMERS}/{r.pool}/claim",
        fresh=("pool",),
    ),
    # An owned customer: its owner is told they hold it, another rep is told nothing.
    Op(
        "POST /api/v1/customers/{id}/claim",
        {**NOBODY, "owner": 409, "other_rep": 404, **keys()},
    ),
    Op(
        "POST /api/v1/customers/{id}/merge",
        {**RECORD, **keys()},
        body=lambda r: {"duplicate_id": r.other},
        fresh=("other",),
    ),
    Op(
        "POST /api/v1/customers/transfers",
        {**NOBODY, "admin": OK, "manager": OK, **keys()},
        body=lambda r: {
            "from_owner_id": r.customer["owner_id"],
            "to_owner_id": None,
            "customer_ids": [r.customer["id"]],
            "reason": "matrix",
        },
        fresh=(),
    ),
    Op(
        "GET /api/v1/customers/level-proposals",
        {**LISTED, **keys(*CUSTOMERS_READ, outcome=SEEN)},
        params=_in_region,
        finds=_by_id,
    ),
    Op(
        "GET /api/v1/customers/data-quality",
        {**LISTED, **keys(*CUSTOMERS_READ, outcome=SEEN)},
        params=_in_region,
        finds=_by_id,
    ),
    Op(
        "GET /api/v1/customers/export",
        {**LISTED, **keys(*CUSTOMERS_READ, outcome=SEEN)},
        params=lambda r: {"region": r.region},
        finds=lambda r: str(r.customer["code"]),
    ),
    Op(
        "POST /api/v1/customers/import",
        {**NOBODY, "admin": OK, "manager": OK, "other_manager": OK, **keys("customers:write")},
        body=lambda r: {"rows": [_new_customer(r)]},
        params=lambda r: {"confirm_duplicates": "true"},
    ),
    Op(
        "GET /api/v1/customers/settings",
        {**dict.fromkeys(PEOPLE, OK), **keys(*CUSTOMERS_READ)},
    ),
    Op("PUT /api/v1/customers/settings", {**ADMIN_ONLY, **keys()}, body=lambda r: r.settings),
    Op("PATCH /api/v1/customers/settings", {**ADMIN_ONLY, **keys()}, body=lambda r: {}),
    Op(
        "GET /api/v1/customers/change-requests",
        {**LISTED, **keys()},
        params=lambda r: {"customer_id": r.customer["id"], "status": "pending"},
        finds=lambda r: r.request,
    ),
    Op(
        "GET /api/v1/customers/change-requests/{request_id}",
        {**RECORD, **keys()},
    ),
    Op(
        "POST /api/v1/customers/change-requests/{request_id}/approve",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {},
        fresh=("request",),
    ),
    Op(
        "POST /api/v1/customers/change-requests/{request_id}/reject",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {},
        fresh=("request",),
    ),
    Op(
        "POST /api/v1/customers/change-requests/{request_id}/withdraw",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        body=lambda r: {},
        fresh=("request",),
    ),
    Op("GET /api/v1/customers/{id}/contacts", {**RECORD, **keys(*CUSTOMERS_READ)}),
    Op(
        "POST /api/v1/customers/{id}/contacts",
        {**RECORD, **keys("customers:write")},
        body=lambda r: {"name": "Wang Fang"},
        fresh=(),
    ),
    Op(
        "PATCH /api/v1/customers/{id}/contacts/{contact_id}",
        {**RECORD, **keys("customers:write")},
        body=lambda r: {"title": "buyer"},
        fresh=("contact",),
    ),
    Op(
        "DELETE /api/v1/customers/{id}/contacts/{contact_id}",
        {**RECORD, **keys("customers:write")},
        fresh=("contact",),
    ),
    Op("GET /api/v1/customers/{id}/orders", {**RECORD, **keys(*ORDERS_READ)}),
    Op(
        "POST /api/v1/customers/{id}/orders",
        {**RECORD, **keys("orders:write")},
        body=lambda r: {"order_date": "2026-03-03", "amount": "5.00"},
        fresh=(),
    ),
    Op("GET /api/v1/orders/{order_id}", {**RECORD, **keys(*ORDERS_READ)}),
    Op("GET /api/v1/orders/{order_id}/payments", {**RECORD, **keys(*ORDERS_READ)}),
    Op(
        "POST /api/v1/orders/{order_id}/payments",
        {**RECORD, **keys("orders:write")},
        body=lambda r: {"amount": "1.00", "received_on": TODAY},
        fresh=("order",),
    ),
    Op(
        "GET /api/v1/orders",
        {**LISTED, **keys(*ORDERS_READ, outcome=SEEN)},
        params=lambda r: {"customer_id": str(r.customer["id"]), "limit": "200"},
        finds=lambda r: r.order,
    ),
    # The shared order has a payment: who may change it is told to reverse it first (409).
    Op(
        "PATCH /api/v1/orders/{order_id}",
        {**PAID, **keys("orders:write", outcome=409)},
        body=lambda r: {"due_date": TODAY},
        headers=lambda r: {"If-Match": '"1"'},
    ),
    Op(
        "POST /api/v1/orders/{order_id}/cancel",
        {**PAID, **keys("orders:write", outcome=409)},
        body=lambda r: {"reason": "matrix"},
    ),
    Op("GET /api/v1/payments/{payment_id}", {**RECORD, **keys(*ORDERS_READ)}),
    Op(
        "POST /api/v1/payments/{payment_id}/reverse",
        {**RECORD, **keys("orders:write")},
        body=lambda r: {"reason": "matrix"},
        fresh=("order",),
    ),
    # Declared lost by its team's manager (or an admin); never by a rep or a key.
    Op(
        "POST /api/v1/customers/{id}/lost",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {"reason": "matrix"},
        fresh=(),
    ),
    # The owner's handover report: a rep reads their own only.
    Op(
        "GET /api/v1/customers/handovers",
        {**LISTED, "other_rep": 403, **keys(*CUSTOMERS_READ, outcome=SEEN)},
        params=lambda r: {"owner_id": str(r.customer["owner_id"]), "limit": "200"},
        finds=_by_id,
    ),
    Op(
        "GET /api/v1/customers/duplicates",
        {**dict.fromkeys(PEOPLE, OK), **keys(*CUSTOMERS_READ)},
    ),
    Op("GET /api/v1/products", {**dict.fromkeys(PEOPLE, OK), **keys(*ORDERS_READ)}),
    Op(
        "POST /api/v1/products",
        {**ADMIN_ONLY, **keys()},
        body=lambda r: {"sku": f"MX-{uuid.uuid4().hex[:10]}", "name": "Matrix ink"},
    ),
    Op(
        "POST /api/v1/products/import",
        {**ADMIN_ONLY, **keys()},
        body=lambda r: {"rows": [{"sku": f"MX-{uuid.uuid4().hex[:10]}", "name": "Imported"}]},
    ),
    Op("GET /api/v1/products/{product_id}", {**dict.fromkeys(PEOPLE, OK), **keys(*ORDERS_READ)}),
    Op(
        "PATCH /api/v1/products/{product_id}",
        {**ADMIN_ONLY, **keys()},
        body=lambda r: {"unit": "box"},
        headers=lambda r: {"If-Match": '"1"'},
        fresh=("product",),
    ),
]

# Lists first: this run's region then holds only the shared records, so every list's first
# page has them, whatever its order (data quality: worst first).
CUSTOMER_OPS.sort(key=lambda op: op.finds is None)


def _owned_by_owner(r: Records) -> dict[str, str]:
    # Each run's owner is new: the list holds this run's records only.
    return {"owner_id": str(r.customer["owner_id"]), "limit": "200"}


OPPORTUNITY_OPS: list[Op] = [
    Op(
        "GET /api/v1/leads",
        {**LISTED, **keys(*LEADS_READ, outcome=SEEN)},
        params=_owned_by_owner,
        finds=lambda r: str(r.lead["id"]),
    ),
    Op("GET /api/v1/leads/{lead_id}", {**RECORD, **keys(*LEADS_READ)}),
    Op("GET /api/v1/leads/{lead_id}/assignments", {**RECORD, **keys(*LEADS_READ)}),
    Op(
        "POST /api/v1/leads",
        {**dict.fromkeys(PEOPLE, OK), **keys("leads:write")},
        body=lambda r: {"source": "web_form", "company": f"Pushed {uuid.uuid4().hex[:10]}"},
    ),
    Op(
        "POST /api/v1/leads/bulk",
        {**dict.fromkeys(PEOPLE, OK), **keys("leads:write")},
        body=lambda r: {"rows": [{"source": "web_form", "company": f"Bulk {uuid.uuid4().hex}"}]},
    ),
    # The first contact is the assigned rep's to record.
    Op(
        "POST /api/v1/leads/{lead_id}/contacted",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        body=lambda r: {},
        fresh=("lead",),
    ),
    Op(
        "POST /api/v1/leads/{lead_id}/invalidate",
        {**RECORD, **keys("leads:write")},
        body=lambda r: {"reason": "spam"},
        fresh=("lead",),
    ),
    # Converting changes the lead and opens an opportunity: a key needs both write scopes.
    Op(
        "POST /api/v1/leads/{lead_id}/convert",
        {**RECORD, **keys()},
        body=lambda r: {"customer_id": r.customer["id"]},
        fresh=("lead",),
    ),
    Op(
        "GET /api/v1/leads/assignment-rules",
        {**dict.fromkeys(PEOPLE, OK), "owner": 403, "other_rep": 403, **keys(*LEADS_READ)},
    ),
    Op("GET /api/v1/leads/sources", {**dict.fromkeys(PEOPLE, OK), **keys(*LEADS_READ)}),
    Op(
        "GET /api/v1/leads/sources/effectiveness",
        {**dict.fromkeys(PEOPLE, OK), "owner": 403, "other_rep": 403, **keys(*LEADS_READ)},
        params=lambda r: {"from": "2026-01-01", "to": "2026-02-01"},
    ),
    Op(
        "PATCH /api/v1/leads/{lead_id}",
        {**RECORD, **keys("leads:write")},
        body=lambda r: {"industry": "matrix"},
        headers=lambda r: {"If-Match": f'"{r.lead["version"]}"'},
        fresh=("lead",),
    ),
    Op(
        "POST /api/v1/leads/{lead_id}/assign",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {"owner_id": r.customer["owner_id"]},
        fresh=("lead",),
    ),
    Op(
        "GET /api/v1/opportunities",
        {**LISTED, **keys(*OPPORTUNITIES_READ, outcome=SEEN)},
        params=_owned_by_owner,
        finds=lambda r: str(r.opportunity["id"]),
    ),
    Op(
        "GET /api/v1/opportunities/board",
        # Another team's board is not there for a manager who does not lead it.
        {**LISTED, "other_manager": 404, **keys(*OPPORTUNITIES_READ, outcome=SEEN)},
        params=lambda r: {"team_id": str(r.customer["team_id"]), "limit": "200"},
        finds=lambda r: str(r.opportunity["id"]),
    ),
    Op(
        "GET /api/v1/opportunities/{opportunity_id}",
        {**RECORD, **keys(*OPPORTUNITIES_READ)},
    ),
    Op(
        "GET /api/v1/opportunities/{opportunity_id}/stages",
        {**RECORD, **keys(*OPPORTUNITIES_READ)},
    ),
    Op(
        "GET /api/v1/opportunities/{opportunity_id}/owners",
        {**RECORD, **keys(*OPPORTUNITIES_READ)},
    ),
    Op(
        "GET /api/v1/opportunities/stages",
        {**dict.fromkeys(PEOPLE, OK), **keys(*OPPORTUNITIES_READ)},
    ),
    Op(
        "GET /api/v1/opportunities/stalled",
        {**dict.fromkeys(PEOPLE, OK), **keys(*OPPORTUNITIES_READ)},
    ),
    # For the owner's customer, owned by the owner: whoever may not see the customer or name
    # that owner is told which field is wrong (422); a key also needs to see the customer
    # (asked of the customers service on its behalf).
    Op(
        "POST /api/v1/opportunities",
        {**RECORD, "other_manager": 422, "other_rep": 422, **keys()},
        body=lambda r: {
            "customer_id": r.customer["id"],
            "name": "Matrix deal",
            "owner_id": r.customer["owner_id"],
        },
    ),
    Op(
        "PATCH /api/v1/opportunities/{opportunity_id}",
        {**RECORD, **keys("opportunities:write")},
        body=lambda r: {"next_action": "call back"},
        headers=lambda r: {"If-Match": f'"{r.opportunity["version"]}"'},
        fresh=("opportunity",),
    ),
    Op(
        "POST /api/v1/opportunities/{opportunity_id}/stage",
        {**RECORD, **keys("opportunities:write")},
        body=lambda r: {"stage": "needs_analysis"},
        fresh=("opportunity",),
    ),
    # A closed one is reopened by a manager.
    Op(
        "POST /api/v1/opportunities/{opportunity_id}/reopen",
        {**RECORD, "owner": 403, **keys()},
        path=lambda r: f"{OPPORTUNITIES}/{r.lost}/reopen",
        body=lambda r: {"reason": "they called back"},
        fresh=("lost",),
    ),
    Op(
        "GET /api/v1/scoring-models",
        {**dict.fromkeys(PEOPLE, OK), **keys("scoring:read")},
    ),
]
OPPORTUNITY_OPS.sort(key=lambda op: op.finds is None)


def _owners_list(r: Records) -> dict[str, str]:
    return {"rep_id": str(r.customer["owner_id"]), "limit": "200"}


def _constant(body: dict[str, str]) -> Callable[[Records], Any]:
    return lambda r: body


def _case_ops(kind: str) -> list[Op]:
    """Complaints and market reports: one set of rules. Whoever sees the case (its rep, their
    managers, admins, keys that may write) works on it; whoever may not see the customer is
    told which field is wrong when raising one about it."""
    base = CASES[kind]
    doc = base + "/{case_id}"

    def at(part: str, action: str = "") -> Callable[[Records], str]:
        return lambda r: f"{base}/{r.cases[part]}{action}"

    moves = [("start", kind, None), ("resolve", kind, {"resolution": "matrix: fixed"})]
    moves += [
        ("close", f"resolved_{kind}", None),
        ("reopen", f"resolved_{kind}", {"reason": "back"}),
    ]
    return [
        Op(
            f"GET {base}",
            {**LISTED, **keys(*VISITS_READ, outcome=SEEN)},
            params=_owners_list,
            finds=lambda r: r.cases[kind],
        ),
        Op(
            f"POST {base}",
            {**RECORD, "other_manager": 422, "other_rep": 422, **keys("visits:write")},
            body=lambda r: {
                "customer_id": r.customer["id"],
                "category": "matrix",
                "severity": "low",
                "description": "raised in the access matrix",
            },
        ),
        Op(f"GET {doc}", {**RECORD, **keys(*VISITS_READ)}, path=at(kind)),
        Op(f"GET {doc}/history", {**RECORD, **keys(*VISITS_READ)}, path=at(kind, "/history")),
        *(
            Op(
                f"POST {doc}/{action}",
                {**RECORD, **keys("visits:write")},
                path=at(part, f"/{action}"),
                body=None if body is None else _constant(body),
                fresh=(part,),
            )
            for action, part, body in moves
        ),
    ]


VISIT_OPS: list[Op] = [
    Op(
        "GET /api/v1/visits",
        {**LISTED, **keys(*VISITS_READ, outcome=SEEN)},
        params=lambda r: {"customer_id": str(r.customer["id"]), "limit": "200"},
        finds=lambda r: r.visit,
    ),
    Op("GET /api/v1/visits/{visit_id}", {**RECORD, **keys(*VISITS_READ)}),
    # Customers due a visit: the owner's never-visited second customer.
    Op(
        "GET /api/v1/visits/follow-ups",
        {**LISTED, **keys(*VISITS_READ, outcome=SEEN)},
        params=_owners_list,
        finds=lambda r: r.other,
    ),
    Op(
        "GET /api/v1/visit-plans",
        {**LISTED, **keys(*VISITS_READ, outcome=SEEN)},
        params=_owners_list,
        finds=lambda r: str(r.plan["id"]),
    ),
    # Everyone plans their own days; a key plans nobody's.
    Op(
        "POST /api/v1/visit-plans",
        {**dict.fromkeys(PEOPLE, OK), **keys()},
        body=lambda r: {"plan_date": (date(2031, 1, 1) + timedelta(days=next(_DAYS))).isoformat()},
    ),
    Op("GET /api/v1/visit-plans/{plan_id}", {**RECORD, **keys(*VISITS_READ)}),
    Op("GET /api/v1/visit-plans/{plan_id}/items", {**RECORD, **keys(*VISITS_READ)}),
    # Only the rep edits and submits their plan; who else sees it is refused.
    Op(
        "PATCH /api/v1/visit-plans/{plan_id}",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        path=lambda r: f"{PLANS}/{r.draft_plan['id']}",
        body=lambda r: {"area": "matrix"},
        headers=lambda r: {"If-Match": f'"{r.draft_plan["version"]}"'},
        fresh=("draft_plan",),
    ),
    Op(
        "POST /api/v1/visit-plans/{plan_id}/submit",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        path=lambda r: f"{PLANS}/{r.draft_plan['id']}/submit",
        fresh=("draft_plan",),
    ),
    # The rep's manager (or an admin) decides; never the rep on their own plan.
    Op(
        "POST /api/v1/visit-plans/{plan_id}/approve",
        {**RECORD, "owner": 403, **keys()},
        fresh=("plan",),
    ),
    Op(
        "POST /api/v1/visit-plans/{plan_id}/return",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {"comment": "matrix: too few visits"},
        fresh=("plan",),
    ),
    Op(
        "GET /api/v1/daily-reports",
        {**LISTED, **keys(*VISITS_READ, outcome=SEEN)},
        params=_owners_list,
        finds=lambda r: str(r.report["id"]),
    ),
    Op(
        "POST /api/v1/daily-reports",
        {**dict.fromkeys(PEOPLE, OK), **keys()},
        body=lambda r: {
            "report_date": (date(2001, 1, 1) + timedelta(days=next(_DAYS))).isoformat()
        },
    ),
    # Managers (and admins, keys) list who has not reported; a rep is refused.
    Op(
        "GET /api/v1/daily-reports/missing",
        {**dict.fromkeys(PEOPLE, OK), "owner": 403, "other_rep": 403, **keys(*VISITS_READ)},
    ),
    Op(
        "GET /api/v1/daily-reports/days/{report_date}",
        {**RECORD, **keys(*VISITS_READ)},
        path=lambda r: f"{REPORTS}/days/{r.report['report_date']}",
        params=lambda r: {"rep_id": str(r.customer["owner_id"])},
    ),
    Op("GET /api/v1/daily-reports/{report_id}", {**RECORD, **keys(*VISITS_READ)}),
    Op(
        "PATCH /api/v1/daily-reports/{report_id}",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        path=lambda r: f"{REPORTS}/{r.returned_report['id']}",
        body=lambda r: {"lessons": "matrix"},
        headers=lambda r: {"If-Match": f'"{r.returned_report["version"]}"'},
        fresh=("returned_report",),
    ),
    Op(
        "POST /api/v1/daily-reports/{report_id}/submit",
        {**RECORD, "admin": 403, "manager": 403, **keys()},
        path=lambda r: f"{REPORTS}/{r.returned_report['id']}/submit",
        fresh=("returned_report",),
    ),
    Op(
        "POST /api/v1/daily-reports/{report_id}/sign-off",
        {**RECORD, "owner": 403, **keys()},
        fresh=("report",),
    ),
    Op(
        "POST /api/v1/daily-reports/{report_id}/return",
        {**RECORD, "owner": 403, **keys()},
        body=lambda r: {"comment": "matrix: more detail"},
        fresh=("report",),
    ),
    *(op for kind in CASES for op in _case_ops(kind)),
]
VISIT_OPS.sort(key=lambda op: op.finds is None)

FEED_OPS: list[Op] = [
    Op(
        f"GET /api/v1/events/{app}",
        {**ADMIN_ONLY, **keys("events:read", f"events:{app}")},
        params=lambda r: {"limit": "1"},
    )
    for app in ("identity", "customers", "visits", "opportunities", "analytics")
]
ALERTS = "/api/v1/alerts"


def _alert(r: Records) -> str:
    return f"{ALERTS}/{r.alert}"


# The owner's alert (low_daily_visits: no visit last week), decided by managers with `*` as
# the version (the cells run side by side on the one alert).
ALERT_OPS: list[Op] = [
    Op(
        "GET /api/v1/alerts",
        {**LISTED, **keys("kpis:read", outcome=SEEN)},
        params=lambda r: {"rule": "low_daily_visits", "limit": "200"},
        finds=lambda r: r.alert,
    ),
    Op("GET /api/v1/alerts/{alert_id}", {**RECORD, **keys("kpis:read")}, path=_alert),
    Op(
        "POST /api/v1/alerts/{alert_id}/acknowledge",
        {**RECORD, "owner": 403, **keys()},
        path=lambda r: _alert(r) + "/acknowledge",
        body=lambda r: {"note": "seen"},
        headers=lambda r: {"If-Match": "*"},
    ),
    Op(
        "POST /api/v1/alerts/{alert_id}/dismiss",
        {**RECORD, "owner": 403, **keys()},
        path=lambda r: _alert(r) + "/dismiss",
        body=lambda r: {"note": "holiday week"},
        headers=lambda r: {"If-Match": "*"},
    ),
    Op("GET /api/v1/alerts/rules", {**dict.fromkeys(PEOPLE, OK), **keys("kpis:read")}),
    # A team's override: its managers and admins; the manager of another team is told nothing.
    Op(
        "PUT /api/v1/alerts/rules/{rule}",
        {**RECORD, "owner": 403, "other_rep": 403, **keys()},
        path=lambda r: f"{ALERTS}/rules/low_development_rate",
        params=lambda r: {"team_id": str(r.customer["team_id"])},
        body=lambda r: {"enabled": True},
        headers=lambda r: {"If-Match": "*"},
    ),
    Op("POST /api/v1/alerts/evaluate", {**ADMIN_ONLY, **keys()}, body=lambda r: None),
    Op(
        "GET /api/v1/reports/next-plan",
        {**RECORD, **keys()},
        params=lambda r: {"rep_id": str(r.customer["owner_id"]), "date": TODAY},
    ),
]
ALERT_OPS.sort(key=lambda op: op.finds is None)

OPS = CUSTOMER_OPS + OPPORTUNITY_OPS + VISIT_OPS + FEED_OPS + ALERT_OPS


# --- running the matrix ---------------------------------------------------------------------


@pytest.fixture
async def world(stack) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=30) as gw:
        admin_login = (stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"])
        org = await organisation(gw, admin_login, PASSWORD)
        users = {
            "manager": org["users"]["manager"],
            "other_manager": org["users"]["other_manager"],
            "owner": org["users"]["rep_a"],
            "other_rep": org["users"]["rep_b"],
        }
        headers = {
            "admin": org["admin"],
            "manager": org["h"]["manager"],
            "other_manager": org["h"]["other_manager"],
            "owner": org["h"]["rep_a"],
            "other_rep": org["h"]["rep_b"],
        }
        for scope in KEY_SCOPES:
            made = await ok(
                await gw.post(
                    "/api/v1/api-keys",
                    json={"name": f"matrix {scope}", "scopes": [scope]},
                    headers=org["admin"],
                ),
                201,
            )
            headers[scope] = {"X-API-Key": made["key"]}
        w = World(gw, headers, users, region=f"MX{uuid.uuid4().hex[:8].upper()}")

        async def owner_known() -> bool:
            # The customers service learns the owner from identity's feed.
            resp = await gw.post(
                CUSTOMERS,
                json={"name": "Matrix probe", "region": w.region, "owner_id": users["owner"]["id"]},
                params={"confirm_duplicates": "true"},
                headers=org["admin"],
            )
            return resp.status_code == 201

        await wait_for(owner_known)
        probe = await w.customer(name="Matrix probe")

        async def owner_known_to_opportunities() -> bool:
            # So does the opportunities service (it opens opportunities for them).
            body = {"customer_id": probe["id"], "name": "probe", "owner_id": users["owner"]["id"]}
            resp = await gw.post(OPPORTUNITIES, json=body, headers=org["admin"])
            return resp.status_code == 201

        await wait_for(owner_known_to_opportunities)
        w.settings = await ok(await gw.get(f"{CUSTOMERS}/settings", headers=org["admin"]))
        w.shared = await w.records()
        w.shared.alert = await owner_alert(gw, org["admin"], users["owner"]["id"])
        yield w


async def owner_alert(gw: httpx.AsyncClient, admin: dict[str, str], owner: str) -> str:
    """The owner's alert: the daily pass, run on demand, finds no visit of theirs last week
    (once the analytics service has heard of them from identity's feed)."""

    async def raised() -> str | None:
        await ok(await gw.post(f"{ALERTS}/evaluate", headers=admin))
        params = {"rep_id": owner, "rule": "low_daily_visits"}
        resp = await gw.get(ALERTS, params=params, headers=admin)
        items = resp.json()["items"] if resp.status_code == 200 else []
        return str(items[0]["id"]) if items else None

    found: str = await wait_for(raised, within=40)
    return found


def _outcome(op: Op, resp: httpx.Response, r: Records) -> Any:
    if resp.status_code >= 300:
        return resp.status_code
    if op.finds is not None:
        return SEEN if op.finds(r) in resp.text else HIDDEN
    return OK


async def _cell(w: World, op: Op, caller: str) -> tuple[str, Any]:
    assert w.shared is not None
    r = w.shared if op.fresh is None else await w.records(op.fresh)
    resp = await w.gw.request(
        op.method,
        op.url(r),
        json=None if op.body is None else op.body(r),
        params=None if op.params is None else op.params(r),
        headers={**w.headers[caller], **(op.headers(r) if op.headers else {})},
    )
    got = _outcome(op, resp, r)
    if got == 403:
        # Refusals are problem documents (a key's names the scope it lacks).
        assert resp.headers["content-type"] == "application/problem+json", resp.text
    return caller, got


async def _run(w: World, op: Op) -> dict[str, Any]:
    # The cells of one operation run side by side: each acts on its own records or only reads.
    cells: list[Awaitable[tuple[str, Any]]] = [_cell(w, op, caller) for caller in CALLERS]
    return dict(await asyncio.gather(*cells))


GROUPS = {
    "customers": CUSTOMER_OPS,
    "opportunities": OPPORTUNITY_OPS,
    "visits": VISIT_OPS,
    "feeds": FEED_OPS,
    "alerts": ALERT_OPS,
}


@pytest.mark.long
@pytest.mark.parametrize("group", list(GROUPS))
async def test_every_operation_as_every_role_and_key(world, group):
    ops = GROUPS[group]
    wrong: list[str] = []
    for op in ops:
        got = await _run(world, op)
        for caller in CALLERS:
            if got[caller] != op.expect[caller]:
                query = op.params(world.shared) if op.params else ""
                wrong.append(
                    f"{op.doc} {query} as {caller}: {got[caller]}, expected {op.expect[caller]}"
                )
    assert not wrong, "\n".join(wrong)


# --- the documented table agrees with the matrix ----------------------------------------------


def _documented() -> dict[str, set[str]]:
    """docs/access.md's table: "METHOD path" -> the key scopes its scope cell names."""
    rows: dict[str, set[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            continue
        path = cells[1].strip("`")
        scopes = set(re.findall(r"`([a-z_]+:[a-z_]+)`", cells[2]))
        # "A write scope includes the read scope of its area."
        scopes |= {s.replace(":read", ":write") for s in scopes if s.endswith(":read")}
        if " and " in cells[2]:
            # Scopes needed together: no key holding one of them is let through.
            scopes = set()
        rows[f"{cells[0]} {path}"] = scopes
    return rows


def test_the_documented_scopes_are_exactly_those_the_matrix_lets_through():
    documented = _documented()
    for op in OPS:
        assert op.doc in documented, f"{op.doc} is missing from docs/access.md"
        through = {scope for scope in KEY_SCOPES if op.expect[scope] != 403}
        assert documented[op.doc] & set(KEY_SCOPES) == through, op.doc
    # And every documented operation is in the matrix.
    covered = {op.doc for op in OPS}
    assert set(documented) == covered, set(documented) ^ covered
