"""The opportunities service as the harness serves it: its directory answers whom a manager
may assign leads to (the active reps of the teams they see), and follows deactivations."""

from __future__ import annotations


async def assignable(opportunities, manager: str) -> set[str]:
    async with opportunities.session() as s:
        directory = opportunities.directory
        teams = await directory.teams_visible_to(s, opportunities.org.user_id(manager))
        return {str(u.id) for u in await directory.users_in(s, teams, roles=["rep"])}


async def test_a_manager_assigns_to_the_active_reps_of_their_teams(opportunities, org):
    assert (await opportunities.get("/readyz")).json()["status"] == "ready"
    north = {org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub}
    assert await assignable(opportunities, "manager_north") == north
    assert await assignable(opportunities, "manager_south") == {org.rep_south.sub}
    assert await assignable(opportunities, "rep_a") == {org.rep_a.sub, org.rep_b.sub}

    await opportunities.deactivate_user(org.rep_b)
    assert await assignable(opportunities, "manager_north") == north - {org.rep_b.sub}

    # The feed of its own events is there for event readers, not for users.
    assert (await opportunities.get("/events", as_=org.manager_north)).status_code == 403
    assert await opportunities.events() == []
