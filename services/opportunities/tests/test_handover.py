"""A deactivated rep's work is handed on (identity's feed, the directory reaction): open leads
go back through assignment (the rules and the team's active reps, else the queue), open
opportunities to the rep's manager; every move logged and announced, by `system` for reason
`owner_deactivated`; the same deactivation twice changes nothing; reactivation gives nothing
back."""

from __future__ import annotations

from typing import Any

from servicekit.directory import USER_REACTIVATED
from servicekit.outbox import Event

LEADS = "/api/v1/leads"
OPPORTUNITIES = "/api/v1/opportunities"
HANDED = ("system", "owner_deactivated")


async def _history(svc: Any, path: str, as_: Any) -> list[dict[str, Any]]:
    return (await svc.ok(await svc.get(path, as_=as_)))["items"]  # type: ignore[no-any-return]


async def test_a_deactivated_reps_leads_and_opportunities_are_handed_on(opportunities, org):
    svc = opportunities
    await svc.rule(org.admin, region="north", team_id=org.team_north)
    north_reps = sorted([org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub])
    # Round robin over the three north reps, twice around: two leads each.
    pushed = [await svc.push(region="north") for _ in range(6)]
    mine = [lead for lead in pushed if lead["owner_id"] == org.rep_a.sub]
    assert len(mine) == 2 and all(lead["status"] == "assigned" for lead in mine)
    contacted = await svc.ok(
        await svc.post(f"{LEADS}/{mine[1]['id']}/contacted", json={}, as_=org.rep_a)
    )
    assert contacted["status"] == "contacted"
    # No rule for the east: a lead the manager gave rep_a goes back to the queue.
    east = await svc.assigned_lead(org.manager_north, org.rep_a)
    # Open and closed opportunities of rep_a's (their leads converted: those stay converted).
    open_one = await svc.opportunity(org.manager_north, org.rep_a)
    won = await svc.opportunity(org.manager_north, org.rep_a)
    await svc.ok(await svc.move(won["id"], org.rep_a, "won", amount="1000.00"))
    before = {e.id for e in await svc.events()}

    await svc.deactivate_user(org.rep_a)

    # The rule's leads: to the team's active reps, round robin going on; status kept.
    moved = [await svc.lead(lead["id"], as_=org.admin) for lead in mine]
    assert {lead["owner_id"] for lead in moved} <= set(north_reps) - {org.rep_a.sub}
    assert [lead["status"] for lead in moved] == ["assigned", "contacted"]
    assert moved[1]["contacted_at"] is not None
    for lead in moved:
        log = await _history(svc, f"{LEADS}/{lead['id']}/assignments", org.manager_north)
        last = log[-1]
        assert (last["from_owner_id"], last["to_owner_id"]) == (org.rep_a.sub, lead["owner_id"])
        assert (last["by"], last["reason"]) == HANDED
        # The new rep has it; rep_a (were they signed in) and others do not.
        assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.rep_south)).status_code == 404
    # The east lead: the unassigned queue, qualified, its assignment time kept.
    queued = await svc.lead(east["id"], as_=org.manager_north)
    assert queued["owner_id"] is None and queued["status"] == "qualified"
    assert queued["assigned_at"] is not None
    log = await _history(svc, f"{LEADS}/{east['id']}/assignments", org.manager_north)
    assert (log[-1]["from_owner_id"], log[-1]["to_owner_id"]) == (org.rep_a.sub, None)
    assert (log[-1]["by"], log[-1]["reason"]) == HANDED

    # The open opportunity: to rep_a's manager, in the same team; the won one stays.
    opened = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{open_one['id']}", as_=org.admin))
    assert opened["owner_id"] == org.manager_north.sub
    assert opened["team_id"] == open_one["team_id"] and opened["version"] == open_one["version"] + 1
    owners = await _history(svc, f"{OPPORTUNITIES}/{open_one['id']}/owners", org.manager_north)
    assert [(o["from_owner_id"], o["to_owner_id"], o["by"], o["reason"]) for o in owners] == [
        (org.rep_a.sub, org.manager_north.sub, *HANDED)
    ]
    closed = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{won['id']}", as_=org.admin))
    assert closed["owner_id"] == org.rep_a.sub
    assert await _history(svc, f"{OPPORTUNITIES}/{won['id']}/owners", org.admin) == []

    # The events: one per move, with the lead's or opportunity's facts as they are now.
    new = [e for e in await svc.events() if e.id not in before]
    by_type: dict[str, list[Event]] = {}
    for e in new:
        by_type.setdefault(e.type, []).append(e)
    assert sorted(by_type) == ["lead.assigned", "lead.unassigned", "opportunity.owner_changed"]
    assert {e.subject for e in by_type["lead.assigned"]} == {lead["id"] for lead in mine}
    for e in by_type["lead.assigned"]:
        assert e.data["from_owner_id"] == org.rep_a.sub and e.data["owner_id"] != org.rep_a.sub
        assert (e.data["by"], e.data["reason"]) == HANDED
    (unassigned,) = by_type["lead.unassigned"]
    assert unassigned.subject == east["id"] and unassigned.data["owner_id"] is None
    assert unassigned.data["status"] == "qualified" and unassigned.data["source"] == "web_form"
    (changed,) = by_type["opportunity.owner_changed"]
    assert changed.subject == open_one["id"]
    assert changed.data["owner_id"] == org.manager_north.sub
    assert changed.data["from_owner_id"] == org.rep_a.sub and changed.data["reason"] == HANDED[1]

    # The same deactivation again: nothing moves, nothing is logged or announced.
    seen = {e.id for e in await svc.events()}
    await svc.deactivate_user(org.rep_a)
    assert [e for e in await svc.events() if e.id not in seen] == []
    assert len(await _history(svc, f"{LEADS}/{east['id']}/assignments", org.admin)) == len(log)

    # Reactivated, rep_a gets nothing back, and is a rep the rules place leads with again.
    await svc.identity_event(
        USER_REACTIVATED,
        id=org.rep_a.sub,
        role=org.rep_a.role,
        team_id=org.rep_a.team_id,
        active=True,
    )
    assert [e for e in await svc.events() if e.id not in seen] == []
    assert (await svc.lead(east["id"], as_=org.admin))["owner_id"] is None
    again = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{open_one['id']}", as_=org.admin))
    assert again["owner_id"] == org.manager_north.sub
    placed = [await svc.push(region="north") for _ in range(3)]
    assert org.rep_a.sub in {lead["owner_id"] for lead in placed}


async def test_leads_go_to_the_queue_when_no_active_rep_is_left_in_the_rules_team(
    opportunities, org
):
    svc = opportunities
    rule = await svc.rule(org.admin, region="south", team_id=org.team_south)
    lead = await svc.push(region="south")
    assert lead["owner_id"] == org.rep_south.sub

    await svc.deactivate_user(org.rep_south)

    queued = await svc.lead(lead["id"], as_=org.manager_south)
    assert queued["owner_id"] is None and queued["status"] == "qualified"
    # The rule's team's queue: the south manager sees it, the north one does not.
    assert queued["team_id"] == org.team_south and queued["rule_id"] == rule["id"]
    assert (await svc.get(f"{LEADS}/{lead['id']}", as_=org.manager_north)).status_code == 404
    # A manager can hand it to someone active; the deactivated rep is refused.
    refused = await svc.post(
        f"{LEADS}/{lead['id']}/assign", json={"owner_id": org.rep_south.sub}, as_=org.admin
    )
    assert refused.status_code == 422 and "deactivated" in refused.text


async def test_opportunities_no_active_manager_takes_over_are_listed_as_orphaned(
    opportunities, org
):
    svc = opportunities
    kept = await svc.opportunity(org.manager_south, org.rep_south)
    won = await svc.opportunity(org.manager_south, org.rep_south)
    await svc.ok(await svc.move(won["id"], org.rep_south, "won", amount="1000.00"))
    active = await svc.opportunity(org.manager_north, org.rep_a)
    # Before anyone leaves, nothing is orphaned.
    assert await _history(svc, f"{OPPORTUNITIES}?orphaned=true", org.admin) == []

    # The south team's manager leaves first: rep_south's open deal has no one to go to.
    await svc.deactivate_user(org.manager_south)
    await svc.deactivate_user(org.rep_south)

    still = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{kept['id']}", as_=org.admin))
    assert still["owner_id"] == org.rep_south.sub
    assert await _history(svc, f"{OPPORTUNITIES}/{kept['id']}/owners", org.admin) == []
    # An admin finds it (and only it: the won one is closed, the other owner is active).
    orphaned = await _history(svc, f"{OPPORTUNITIES}?orphaned=true", org.admin)
    assert [o["id"] for o in orphaned] == [kept["id"]]
    others = await _history(svc, f"{OPPORTUNITIES}?orphaned=false", org.admin)
    assert {o["id"] for o in others} == {won["id"], active["id"]}
    # Combined with the other filters, and within the record rules: the north manager does not
    # see the south team's deals.
    south = f"{OPPORTUNITIES}?orphaned=true&open=true&team_id={org.team_south}"
    assert [o["id"] for o in await _history(svc, south, org.admin)] == [kept["id"]]
    assert await _history(svc, f"{OPPORTUNITIES}?orphaned=true", org.manager_north) == []
    refused = await svc.get(f"{OPPORTUNITIES}?orphaned=perhaps", as_=org.admin)
    assert refused.status_code == 422 and "orphaned" in refused.text
