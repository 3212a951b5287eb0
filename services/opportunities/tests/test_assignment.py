"""Assignment: rules kept as data (first match wins), round robin and least open load within
the team, the unassigned queue managers see, manual (re)assignment and its log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from opportunities.assignment import repository
from opportunities.assignment import service as assignment
from opportunities.leads import intake
from opportunities.leads import service as leads_service
from servicekit.db import to_asyncpg_dsn
from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
RULES = "/api/v1/leads/assignment-rules"


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


async def test_rules_are_tried_in_order_and_round_robin_takes_turns(opportunities, org):
    svc = opportunities
    south = await svc.rule(org.admin, region="south", team_id=org.team_south, position=10)
    retail_north = await svc.rule(
        org.admin, region="North ", industry="Retail", team_id=org.team_north, position=20
    )
    assert retail_north["region"] == "NORTH" and retail_north["industry"] == "retail"
    listed = await svc.ok(await svc.get(RULES, as_=org.manager_north))
    assert [r["id"] for r in listed["items"]] == [south["id"], retail_north["id"]]

    rows = [
        {
            "source": "web_form",
            "company": f"Shop {i}",
            "region": "north",
            "industry": "RETAIL",
            "evaluation": svc.HOT,
        }
        for i in range(6)
    ]
    rows.append(
        {"source": "web_form", "company": "South Co", "region": "south", "evaluation": svc.HOT}
    )
    rows.append(
        {
            "source": "web_form",
            "company": "Factory",
            "region": "north",
            "industry": "steel",
            "evaluation": svc.HOT,
        }
    )
    result = await svc.ok(await svc.bulk(rows))
    leads = [await svc.lead(r["id"], as_=org.admin) for r in result["results"]]

    north_reps = sorted([org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub])
    # Round robin over the team tree's reps in id order, twice around.
    assert [lead["owner_id"] for lead in leads[:6]] == north_reps * 2
    assert all(
        lead["status"] == "assigned" and lead["rule_id"] == retail_north["id"] for lead in leads[:6]
    )
    assert leads[6]["owner_id"] == org.rep_south.sub and leads[6]["team_id"] == org.team_south
    # No rule for steel in the north: the unassigned queue.
    assert leads[7]["status"] == "qualified" and leads[7]["owner_id"] is None
    # The rule remembers its place across calls.
    next_one = await svc.push(region="north", industry="retail")
    assert next_one["owner_id"] == north_reps[0]

    # The rule's assignment is told by the lead's one event, `lead.received`.
    (event,) = [e for e in await svc.events() if e.subject == leads[0]["id"]]
    assert event.type == "lead.received" and event.data["status"] == "assigned"
    assert event.data["rule_id"] == retail_north["id"]
    assert event.data["owner_id"] == leads[0]["owner_id"]
    assert event.data["team_id"] == leads[0]["team_id"]


async def test_least_open_load_gives_the_lead_to_the_rep_with_the_least_in_hand(opportunities, org):
    svc = opportunities
    await svc.assigned_lead(org.manager_north, org.rep_a)
    await svc.assigned_lead(org.manager_north, org.rep_a)
    await svc.assigned_lead(org.manager_north, org.rep_b)
    await svc.rule(org.admin, team_id=org.team_north, strategy="least_load")
    result = await svc.ok(
        await svc.bulk(
            [{"source": "web_form", "company": f"L{i}", "evaluation": svc.HOT} for i in range(4)]
        )
    )
    owners = [(await svc.lead(r["id"], as_=org.admin))["owner_id"] for r in result["results"]]
    # rep_sub had none, rep_b one, rep_a two: they are evened out first.
    assert owners[0] == org.rep_sub.sub
    assert sorted(owners[1:3]) == sorted([org.rep_sub.sub, org.rep_b.sub])
    counts = {rep: owners.count(rep) for rep in set(owners)}
    assert counts.get(org.rep_a.sub, 0) <= 1


async def test_a_lead_whose_rows_mix_their_region_and_industry_is_placed_by_its_final_pair(
    opportunities, org, monkeypatch
):
    """A large call reads what placing may need while it scores, for the (region, industry)
    of each row; a lead that a later row of the call moves (the region of one row, the
    industry of another) is placed by the rule of what it holds in the end all the same."""
    svc = opportunities
    monkeypatch.setattr(intake, "_TURN", 1)  # these two rows are a large call
    await svc.rule(org.admin, region="north", industry="steel", team_id=org.team_north)
    south_steel = await svc.rule(
        org.admin, region="south", industry="steel", team_id=org.team_south
    )
    rows = [
        {
            "source": "web_form",
            "external_id": "mixed-1",
            "company": "Mixed Steel",
            "region": "north",
            "industry": "steel",
            "evaluation": svc.HOT,
        },
        {"source": "web_form", "external_id": "mixed-1", "region": "south"},
    ]
    result = await svc.ok(await svc.bulk(rows))
    assert [r["outcome"] for r in result["results"]] == ["created", "updated"]
    lead = await svc.lead(result["results"][0]["id"], as_=org.admin)
    assert (lead["region"], lead["industry"]) == ("SOUTH", "steel")
    assert lead["status"] == "assigned" and lead["owner_id"] == org.rep_south.sub
    assert lead["rule_id"] == south_steel["id"] and lead["team_id"] == org.team_south


async def test_the_unassigned_queue_is_seen_by_managers_who_assign_and_reassign(opportunities, org):
    svc = opportunities
    lead = await svc.push()
    queue = {"queue": "true"}
    for manager in (org.manager_north, org.manager_south, org.admin):
        page = await svc.ok(await svc.get(LEADS, params=queue, as_=manager))
        assert [i["id"] for i in page["items"]] == [lead["id"]]
    assert (await svc.ok(await svc.get(LEADS, params=queue, as_=org.rep_a)))["items"] == []
    assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.rep_a)).status_code == 404

    path = f"{LEADS}/{lead['id']}/assign"
    refused = await svc.post(path, json={"owner_id": org.rep_a.sub}, as_=org.manager_south)
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == ["owner_id"]
    assert (
        await svc.post(path, json={"owner_id": org.manager_north.sub}, as_=org.admin)
    ).status_code == 422
    assert (
        await svc.post(path, json={"owner_id": org.rep_a.sub}, as_=org.rep_a)
    ).status_code == 404
    assigned = await svc.ok(
        await svc.post(path, json={"owner_id": org.rep_a.sub}, as_=org.manager_north)
    )
    assert assigned["status"] == "assigned" and assigned["team_id"] == org.team_north
    # Now the north team's: the south manager no longer sees it.
    assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.manager_south)).status_code == 404
    assert (
        await svc.post(path, json={"owner_id": org.rep_a.sub}, as_=org.rep_a)
    ).status_code == 403

    moved = await svc.ok(
        await svc.post(
            path,
            json={"owner_id": org.rep_sub.sub, "reason": "rep_a is on leave"},
            as_=org.manager_north,
        )
    )
    assert moved["owner_id"] == org.rep_sub.sub and moved["assigned_at"] == assigned["assigned_at"]
    log = await svc.ok(await svc.get(f"{path}ments", as_=org.manager_north))
    assert [(a["from_owner_id"], a["to_owner_id"], a["by"], a["reason"]) for a in log["items"]] == [
        (None, org.rep_a.sub, org.manager_north.sub, "assigned by a manager"),
        (org.rep_a.sub, org.rep_sub.sub, org.manager_north.sub, "rep_a is on leave"),
    ]
    assert (await svc.get(f"{path}ments", as_=org.rep_a)).status_code == 404
    assert (await svc.get(f"{path}ments", as_=org.rep_sub)).status_code == 200


async def test_a_rule_whose_team_has_no_rep_leaves_the_lead_in_that_teams_queue(opportunities, org):
    svc = opportunities
    await svc.deactivate_user(org.rep_south)
    await svc.rule(org.admin, region="south", team_id=org.team_south)
    lead = await svc.push(region="south")
    assert lead["status"] == "qualified" and lead["owner_id"] is None
    assert lead["team_id"] == org.team_south
    assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.manager_south)).status_code == 200
    assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.manager_north)).status_code == 404


async def test_rules_are_changed_by_admins_only(opportunities, org):
    svc = opportunities
    body = {"team_id": org.team_north}
    assert (await svc.post(RULES, json=body, as_=org.manager_north)).status_code == 403
    assert (await svc.post(RULES, json=body, as_=key("leads:write"))).status_code == 403
    assert (await svc.get(RULES, as_=org.rep_a)).status_code == 403
    assert (await svc.get(RULES, as_=key("opportunities:read"))).status_code == 403
    unknown = await svc.post(RULES, json={"team_id": org.rep_a.sub}, as_=org.admin)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["team_id"]
    bad = await svc.post(RULES, json={**body, "strategy": "random"}, as_=org.admin)
    assert bad.status_code == 422

    created = await svc.post(RULES, json=body, as_=org.admin)
    rule = await svc.ok(created, 201)
    path = f"{RULES}/{rule['id']}"
    assert (await svc.patch(path, json={"active": False}, as_=org.admin)).status_code == 428
    changed = await svc.patch(
        path, json={"active": False}, headers={"If-Match": created.headers["etag"]}, as_=org.admin
    )
    assert (await svc.ok(changed))["active"] is False
    # Inactive: the lead waits in the queue.
    assert (await svc.push())["owner_id"] is None
    assert (
        await svc.delete(path, headers={"If-Match": created.headers["etag"]}, as_=org.admin)
    ).status_code == 412
    gone = await svc.delete(path, headers={"If-Match": changed.headers["etag"]}, as_=org.admin)
    assert gone.status_code == 204
    assert (await svc.get(path, as_=org.admin)).status_code == 404


async def test_least_load_reads_only_the_leads_a_rep_holds(opportunities, org):
    """Least open load counts what each rep holds (assigned, contacted, open opportunities)
    and reads it from the partial index of held leads, even in a prepared statement's generic
    plan: a rep with years of closed leads costs each placement what a new rep costs."""
    svc = opportunities
    rep_a, rep_b = uuid.UUID(org.rep_a.sub), uuid.UUID(org.rep_b.sub)
    now = datetime.now(UTC)
    history = ["converted", "invalid"] * 1500 + ["assigned", "assigned", "contacted"]
    rows = [(uuid.uuid4(), "web_form", f"Old {i}", status, rep_a, now, now, now)
            for i, status in enumerate(history)]  # fmt: skip
    rows.append((uuid.uuid4(), "web_form", "New", "assigned", rep_b, now, now, now))
    columns = ["id", "source", "company", "status", "owner_id", "received_at", "created_at",
               "updated_at"]  # fmt: skip
    conn = await asyncpg.connect(to_asyncpg_dsn(svc.database_url))
    try:
        await conn.copy_records_to_table(
            "leads", schema_name="opportunities", columns=columns, records=rows
        )
        await conn.execute("ANALYZE opportunities.leads")
        compiled = repository.open_load_statement([rep_a, rep_b]).compile(
            dialect=svc.app.state.db.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        # Planned as a prepared statement is after its fifth run: for any parameters.
        await conn.execute(f"PREPARE held_load AS {compiled}")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        args = ", ".join(f"'{compiled.params[n]}'" for n in compiled.positiontup or ())
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE held_load({args})")
    finally:
        await conn.close()
    assert "ix_leads_owner_open" in plan, plan

    async with svc.app.state.db.session() as session:
        load = await repository.open_load(session, [rep_a, rep_b, uuid.UUID(org.rep_sub.sub)])
    assert load == {rep_a: 3, rep_b: 1, uuid.UUID(org.rep_sub.sub): 0}


async def test_a_batch_placed_and_written_in_parts_gives_each_lead_what_one_piece_would(
    opportunities, org, monkeypatch
):
    """A large batch's new leads are placed and written a part at a time (the first part is
    stored while the next is placed): round robin goes on from part to part in the order the
    rows came, a lead changed by the batch is placed after the new ones, and every lead, log
    row and event is written once."""
    svc = opportunities
    monkeypatch.setattr(leads_service, "PART", 64)  # parts of 64, 64, 64 and the rest: COPY
    rule = await svc.rule(org.admin, region="north", team_id=org.team_north)
    existing = await svc.push(region="north", evaluation=svc.COLD, external_id="known-1")
    assert existing["status"] == "nurturing"

    kinds = ["rr", "nurture", "queue", "rr"] * 50  # 100 placed by the rule, 50 queued
    rows = [
        {
            "source": "web_form",
            "external_id": f"part-{i}",
            "company": f"Part {i}",
            "region": "west" if kind == "queue" else "north",
            "evaluation": svc.COLD if kind == "nurture" else svc.HOT,
        }
        for i, kind in enumerate(kinds)
    ]
    # The known lead, now hot (rescored, placed after the new ones), and a row repeating the
    # first one's lead (merged into it: one lead).
    rows.append({"source": "web_form", "external_id": "known-1", "evaluation": svc.HOT})
    rows.append({"source": "web_form", "external_id": "part-0", "need": "paper"})
    result = await svc.ok(await svc.bulk(rows))
    assert (result["created"], result["updated"], result["errors"]) == (200, 2, 0)

    north_reps = sorted([org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub])
    conn = await asyncpg.connect(to_asyncpg_dsn(svc.database_url))
    try:
        leads = {
            r["external_id"]: r
            for r in await conn.fetch(
                "SELECT external_id, status, owner_id::text, rule_id::text, need"
                " FROM opportunities.leads"
            )
        }
        log = await conn.fetch(
            "SELECT l.external_id, a.to_owner_id::text FROM opportunities.lead_assignments a"
            " JOIN opportunities.leads l ON l.id = a.lead_id ORDER BY a.id"
        )
        received = await conn.fetchval(
            "SELECT count(*) FROM opportunities.outbox WHERE type = 'lead.received'"
        )
    finally:
        await conn.close()
    assert len(leads) == 201 and leads["part-0"]["need"] == "paper"
    placed = [f"part-{i}" for i, kind in enumerate(kinds) if kind == "rr"] + ["known-1"]
    # Round robin over the team's reps in id order, in row order across the parts, the known
    # lead last.
    assert [leads[x]["owner_id"] for x in placed] == [north_reps[i % 3] for i in range(101)]
    assert all(leads[x]["rule_id"] == rule["id"] for x in placed)
    assert [(r["external_id"], r["to_owner_id"]) for r in log] == [
        (x, leads[x]["owner_id"]) for x in placed
    ]
    queued = [leads[f"part-{i}"] for i, kind in enumerate(kinds) if kind == "queue"]
    assert all(q["status"] == "qualified" and q["owner_id"] is None for q in queued)
    nurtured = [leads[f"part-{i}"] for i, kind in enumerate(kinds) if kind == "nurture"]
    assert all(n["status"] == "nurturing" for n in nurtured)
    # One `lead.received` for each new lead and the first pushed: none for the merged row.
    assert received == 201


async def test_a_placer_covers_the_pairs_whose_rules_teams_it_read(opportunities, org):
    """A placer loaded ahead (for the pairs a call may place) is used when it read the reps of
    every rule the leads to place match; otherwise intake loads one for them."""
    svc = opportunities
    await svc.rule(org.admin, region="north", team_id=org.team_north)
    await svc.rule(org.admin, region="south", industry="steel", team_id=org.team_south)
    async with svc.app.state.db.session() as session:
        placer = await assignment.Placer.load(session, [("NORTH", None), ("WEST", None)])
        empty = await assignment.Placer.load(session, [])
    # Read for the north rule (and no rule for the west): those, and any pair they match.
    assert placer.covers([("NORTH", None), ("NORTH", "retail"), ("WEST", "steel")])
    assert placer.covers([])
    # The south rule's team was not read.
    assert not placer.covers([("NORTH", None), ("SOUTH", "steel")])
    # A placer loaded for nothing read no rule: it covers nothing to place.
    assert empty.covers([]) and not empty.covers([("WEST", None)])
