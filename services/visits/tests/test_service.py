"""The visits service as the harness serves it: ready, following the identity feed, and its
directory answering the question visits asks most: who supervises a rep."""

from __future__ import annotations


async def test_a_reps_supervisor_follows_the_rep_across_teams(visits, org):
    ready = (await visits.get("/readyz")).json()
    assert ready["status"] == "ready", ready
    assert ready["feeds"]["identity"]["state"] == "following"

    async with visits.session() as s:
        # The nearest manager up the tree, also for a rep of a sub-team without its own.
        for rep, supervisor in [("rep_a", "manager_north"), ("rep_sub", "manager_north")]:
            found = await visits.directory.manager_of(s, org.user_id(rep))
            assert found is not None and found.id == org.user_id(supervisor)

    await visits.move_user(org.rep_sub, org.team_south)
    async with visits.session() as s:
        moved = await visits.directory.manager_of(s, org.user_id("rep_sub"))
        assert moved is not None and moved.id == org.user_id("manager_south")
        assert await visits.directory.in_scope(
            s, org.user_id("manager_south"), org.user_id("rep_sub")
        )
        assert not await visits.directory.in_scope(
            s, org.user_id("manager_north"), org.user_id("rep_sub")
        )

    # Its own feed: served, empty so far, and for readers of events only.
    assert await visits.events() == []
    assert (await visits.get("/events", as_=org.rep_a)).status_code == 403
    assert (await visits.get("/events")).status_code == 401
