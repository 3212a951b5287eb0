"""The analytics service as the harness serves it: its directory holds the team tree that
targets are decomposed down, and keeps it when a team moves under another."""

from __future__ import annotations

import uuid


async def tree(analytics, team: uuid.UUID) -> dict[str, object]:
    """A team's sub-tree as names, with the reps of each team."""
    directory = analytics.directory
    names = {t.id: name for name, t in analytics.org.teams.items()}
    async with analytics.session() as s:
        below = await directory.subteams(s, team)
        reps = await directory.reps_of(s, team, include_subteams=False)
        return {
            "reps": sorted(u.name for u in reps),
            **{names[str(t.id)]: await tree(analytics, t.id) for t in below},
        }


async def test_the_team_tree_to_decompose_targets_down(analytics, org):
    ready = (await analytics.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["schema"] == "analytics"
    assert await tree(analytics, org.team_id("north")) == {
        "reps": ["Rep A", "Rep B"],
        "north_sub": {"reps": ["Rep Sub"]},
    }

    # North's sub-team is moved under south (identity announces it with its new parent).
    await analytics.identity_event("team.changed", id=org.team_north_sub, parent_id=org.team_south)
    assert await tree(analytics, org.team_id("south")) == {
        "reps": ["Rep South"],
        "north_sub": {"reps": ["Rep Sub"]},
    }
    async with analytics.session() as s:
        south_reps = await analytics.directory.reps_of(s, org.team_id("south"))
        assert {u.id for u in south_reps} == {org.user_id("rep_south"), org.user_id("rep_sub")}
        assert await analytics.directory.teams_visible_to(s, org.user_id("manager_south")) == {
            org.team_id("south"),
            org.team_id("north_sub"),
        }
    assert (await analytics.get("/events", as_=org.admin)).status_code == 403
