"""The visits service as the harness serves it: ready, following the identity feed, and its
directory answering the question visits asks most: who supervises a rep."""

from __future__ import annotations

from visits.main import create_app


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


def test_the_api_document_tells_a_client_each_answer():
    """What a generated client is told: money as decimal strings (in and out), and each
    route's own 404 / 409 / 422 with its cause, as problem documents, and its ETag."""
    doc = create_app().openapi()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    sent = schemas["VisitCreate"]["properties"]["order_amount"]["anyOf"][0]
    assert sent["type"] == "string" and sent["pattern"].startswith("^(0|[1-9]")
    for model, field in [
        ("VisitRead", "order_amount"),
        ("VisitRead", "expenses_total"),
        ("ExpenseRead", "amount"),
        ("DailyFigures", "collected_amount"),
    ]:
        assert schemas[model]["properties"][field]["type"] == "string", (model, field)

    def described(path: str, method: str, status: str, words: str) -> None:
        answer = paths[path][method]["responses"][status]
        assert words in answer["description"], (path, method, status, answer["description"])
        assert "application/problem+json" in answer["content"], (path, method, status)

    described("/api/v1/visits", "post", "409", "plan item already has its visit")
    described("/api/v1/visits", "post", "422", "may not see")
    described("/api/v1/visits/{visit_id}", "get", "404", "another rep's")
    described("/api/v1/visits/{visit_id}/complete", "post", "409", "final")
    described("/api/v1/visits/{visit_id}/complete", "post", "409", "Idempotency-Key")
    patch_conflict = paths["/api/v1/visits/{visit_id}"]["patch"]["responses"]["409"]
    assert "Idempotency-Key" not in patch_conflict["description"]
    described("/api/v1/visit-plans", "post", "409", "already has a plan")
    described("/api/v1/visit-plans/{plan_id}/approve", "post", "409", "submitted")
    described("/api/v1/visit-plans/{plan_id}", "patch", "412", "If-Match")
    described("/api/v1/daily-reports", "post", "409", "already reported")
    described("/api/v1/daily-reports/{report_id}/sign-off", "post", "409", "submitted")
    described("/api/v1/complaints/{case_id}/close", "post", "409", "state")
    described("/api/v1/market-reports/{case_id}", "get", "404", "market report")
    assert "ETag" in paths["/api/v1/visit-plans/{plan_id}"]["get"]["responses"]["200"]["headers"]
    created = paths["/api/v1/complaints"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(created)
