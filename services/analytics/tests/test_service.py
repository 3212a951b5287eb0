"""The analytics service as the harness serves it: its directory holds the team tree that
targets are decomposed down, and keeps it when a team moves under another."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from analytics.config import Settings
from analytics.main import spec
from servicekit.testing.harness import serve_service


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


async def test_lag_is_measured_per_feed_and_an_unreachable_feed_degrades_readiness(
    analytics, org, fresh_db, minter
):
    # A customer event written an hour ago (by the app's clock's reading of it), applied now.
    customer = {"id": str(uuid.uuid4()), "owner_id": org.rep_a.sub, "team_id": org.rep_a.team_id}
    assert analytics.feeds is not None
    analytics.feeds.publish("customer.created", customer["id"], customer, source="customers")
    item = analytics.feeds.items["customers"][-1]
    item["time"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await analytics.sync_feed("customers")
    metrics = (await analytics.get("/metrics")).text
    ages = {
        line.split('source="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("consumer_newest_applied_age_seconds{") and 'app="analytics"' in line
    }
    assert 3590 < ages["customers"] < 3700 and ages["opportunities"] == 0
    assert 'consumer_lag_seconds{app="analytics",consumer="analytics.customers"' in metrics
    ready = await analytics.get("/readyz")
    assert ready.status_code == 200 and ready.json()["feeds"]["customers"]["state"] == "following"

    # Feeds that cannot be read: still ready to answer (200), but degraded, feed by feed.
    async with serve_service(spec(), Settings, fresh_db, minter, follow_feeds=False) as alone:
        answer = await alone.get("/readyz")
        assert answer.status_code == 200 and answer.json()["status"] == "degraded"
