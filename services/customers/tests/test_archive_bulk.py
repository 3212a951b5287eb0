"""The bulk create path (COPY for large batches) writes the same records, codes, ledger,
history and events as a single create."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from customers.archive.history import Actor
from customers.archive.models import HISTORY
from customers.archive.schemas import CustomerCreate
from customers.archive.service import NewCustomer, create_customers_bulk
from servicekit import bulk
from servicekit.db import utcnow
from servicekit.errors import Conflict

API = "/api/v1/customers"


async def test_a_large_batch_goes_through_copy_with_codes_history_ledger_and_events(customers, org):
    count = bulk.COPY_THRESHOLD * 2
    team = uuid.UUID(org.team_north)
    owner = uuid.UUID(org.rep_a.sub)
    items = [
        NewCustomer(
            CustomerCreate(
                name=f"Bulk {i}",
                region="north" if i % 2 else "south",
                estimated_potential="1234.50",
                tags=["bulk"],
                external_ref=f"B{i}",
                source="erp",
            ),
            owner,
            team,
        )
        for i in range(count)
    ]
    async with customers.app.state.db.session() as session:
        rows = await create_customers_bulk(
            session, Actor(org.admin.sub), items, extensions=customers.extensions
        )
    assert len(rows) == count
    codes = sorted(r["code"] for r in rows)
    half = count // 2
    assert codes == sorted(
        [f"NORTH-C-{n:06}" for n in range(1, half + 1)]
        + [f"SOUTH-C-{n:06}" for n in range(1, half + 1)]
    )
    # Single creates continue the same sequences.
    after = await customers.create(org.rep_a, region="NORTH")
    assert after["code"] == f"NORTH-C-{half + 1:06}"

    h = customers.headers(org.rep_a)
    one = rows[7]
    file = (await customers.client.get(f"{API}/{one['id']}", headers=h)).json()
    assert file["estimated_potential"] == "1234.50" and file["tags"] == ["bulk"]
    assert file["ownership"][0]["kind"] == "created" and file["ownership"][0]["owner_id"] == str(
        owner
    )
    history = (await customers.client.get(f"{API}/{one['id']}/history", headers=h)).json()
    created = history["items"][0]
    assert created["action"] == "created" and created["actor_id"] == org.admin.sub
    assert created["changes"]["estimated_potential"] == {"old": None, "new": "1234.50"}
    assert created["changes"]["owner_id"] == {"old": None, "new": str(owner)}
    events = [e for e in await customers.events({"customer.created"}) if e.data["source"] == "erp"]
    assert len(events) == count
    by_id = {e.subject: e.data for e in events}
    assert by_id[str(one["id"])]["code"] == one["code"]
    assert by_id[str(one["id"])]["estimated_potential"] == "1234.50"
    assert by_id[str(one["id"])]["team_id"] == org.team_north


async def test_a_batch_losing_on_external_ref_rolls_back_whole_with_its_codes(customers, org):
    first = await customers.create(org.rep_a, source="erp", external_ref="TAKEN")
    items = [
        NewCustomer(
            CustomerCreate(
                name=f"Batch {i}",
                region="EAST",
                source="erp",
                external_ref="TAKEN" if i == 70 else f"N{i}",
            ),
            None,
            None,
        )
        for i in range(bulk.COPY_THRESHOLD + 10)
    ]
    with pytest.raises(Conflict):
        async with customers.app.state.db.session() as session:
            await create_customers_bulk(
                session, Actor(org.admin.sub), items, extensions=customers.extensions
            )
    after = await customers.create(org.rep_a)
    assert first["code"] == "EAST-C-000001" and after["code"] == "EAST-C-000002"


async def test_a_copy_as_the_first_statement_stays_in_the_transaction(customers, org):
    """SQLAlchemy begins the transaction with its first statement; a COPY sent before any
    statement must still be undone by a rollback (and kept by a commit)."""
    db = customers.app.state.db
    n = bulk.COPY_THRESHOLD
    ids = [uuid.uuid4() for _ in range(2 * n)]
    rows = [
        {
            "customer_id": cid,
            "version": 1,
            "at": utcnow(),
            "actor_kind": "system",
            "action": "created",
            "changes": {"name": {"old": None, "new": f"n{i}"}},
        }
        for i, cid in enumerate(ids)
    ]
    session = db.new_session()
    try:
        await bulk.insert_rows(session, HISTORY, rows[:n])
        await session.rollback()
    finally:
        await session.close()
    async with db.session() as session:
        await bulk.insert_rows(session, HISTORY, rows[n:])
    async with db.session() as session:
        stored = (
            await session.execute(
                sa.select(HISTORY.c.customer_id, HISTORY.c.changes).where(
                    HISTORY.c.customer_id.in_(ids)
                )
            )
        ).all()
    assert sorted(r.customer_id for r in stored) == sorted(ids[n:])
    assert {r.changes["name"]["new"] for r in stored} == {f"n{i}" for i in range(n, 2 * n)}
