"""The evaluation model: explained scores, nurture under the threshold, versions that freeze
once used, a challenger scoring beside the active model, and calibration on closed
opportunities (win rate per band, Brier score)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from opportunities.leads.service import Work, score
from opportunities.scoring.rules import Scorer
from opportunities.scoring.service import Scorers
from servicekit.db import utcnow
from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
MODELS = "/api/v1/scoring-models"
RULES = "/api/v1/leads/assignment-rules"


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


def model_body(threshold: int = 30, **extra_points: int) -> dict[str, Any]:
    """Two criteria (urgency 0-40, budget 0-20) plus any given as name=points."""
    criteria = [
        {
            "key": "need_urgency",
            "label": "Urgency",
            "options": [
                {"value": "high", "points": 40},
                {"value": "medium", "points": 20},
                {"value": "low", "points": 0},
            ],
        },
        {
            "key": "budget_confirmed",
            "options": [{"value": "yes", "points": 20}, {"value": "no", "points": 0}],
        },
    ]
    for name, points in extra_points.items():
        criteria.append(
            {
                "key": name,
                "options": [{"value": "yes", "points": points}, {"value": "no", "points": 0}],
            }
        )
    return {"name": "Lean model", "criteria": criteria, "threshold": threshold}


async def active_model(svc: Any, principal: Any) -> Any:
    page = await svc.ok(await svc.get(MODELS, params={"status": "active"}, as_=principal))
    (model,) = page["items"]
    return model


async def test_a_score_lists_each_criterions_points_the_model_version_and_threshold(
    opportunities, org
):
    svc = opportunities
    lead = await svc.push(
        evaluation={
            "need_urgency": "medium",
            "purchase_timing": "within_3_months",
            "decision_maker_identified": "yes",
            "budget_confirmed": None,
        }
    )
    score = lead["score"]
    assert score["version"] == 1 and score["threshold"] == 60 and score["max_points"] == 100
    assert score["points"] == 50 and score["qualified"] is False
    by_key = {c["key"]: c for c in score["criteria"]}
    assert list(by_key) == [
        "need_urgency",
        "purchase_timing",
        "purchase_cycle",
        "decision_maker_identified",
        "budget_confirmed",
    ]
    assert by_key["need_urgency"] == {
        "key": "need_urgency",
        "label": "Need urgency",
        "value": "medium",
        "points": 15,
        "max_points": 25,
    }
    assert by_key["purchase_cycle"]["value"] is None and by_key["purchase_cycle"]["points"] == 0
    # On arrival the score is told by the lead's one `lead.received`.
    (scored,) = [e for e in await svc.events() if e.subject == lead["id"]]
    assert scored.type == "lead.received" and scored.data["model_version"] == 1
    assert scored.data["score"] == 50 and scored.data["model_id"] == lead["score"]["model_id"]
    assert scored.data["qualified"] is False and scored.data["source"] == "web_form"


async def test_a_lead_under_the_threshold_is_nurtured_not_assigned(opportunities, org, clock):
    svc = opportunities
    await svc.rule(org.admin, team_id=org.team_north)  # would place anything
    lead = await svc.push(evaluation=svc.COLD)
    assert lead["status"] == "nurturing" and lead["owner_id"] is None
    assert lead["next_touch_on"] == (clock.now() + timedelta(days=30)).date().isoformat()
    assert lead["nurtured_at"] is not None and lead["assigned_at"] is None
    # One event tells the arrival, its score and its nurture.
    (received,) = [e for e in await svc.events() if e.subject == lead["id"]]
    assert received.type == "lead.received" and received.data["status"] == "nurturing"
    assert received.data["next_touch_on"] == lead["next_touch_on"]
    assert received.data["owner_id"] is None and received.data["rule_id"] is None
    due = await svc.ok(
        await svc.get(
            LEADS,
            params={"touch_due_by": lead["next_touch_on"], "status": "nurturing"},
            as_=org.manager_south,
        )
    )
    assert [i["id"] for i in due["items"]] == [lead["id"]]

    # Requalified with what the marketing call found out: qualified now, so assigned.
    path = f"{LEADS}/{lead['id']}/requalify"
    assert (await svc.post(path, json={}, as_=org.rep_a)).status_code == 404
    assert (await svc.post(path, json={}, as_=key("leads:read"))).status_code == 403
    clock.advance(days=31)
    again = await svc.ok(await svc.post(path, json={}, as_=org.manager_north))
    assert again["status"] == "nurturing" and again["next_touch_on"] > lead["next_touch_on"]
    hot = await svc.ok(await svc.post(path, json={"evaluation": svc.HOT}, as_=org.manager_north))
    assert hot["status"] == "assigned" and hot["score"]["points"] == 100
    assert hot["owner_id"] in {org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub}
    refused = await svc.post(path, json={}, as_=org.manager_north)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/lead-state"


async def test_changing_a_leads_inputs_rescores_it(opportunities, org):
    svc = opportunities
    lead = await svc.assigned_lead(org.manager_north, org.rep_a)
    path = f"{LEADS}/{lead['id']}"
    got = await svc.get(path, as_=org.rep_a)
    resp = await svc.patch(
        path,
        json={"evaluation": {"need_urgency": "low"}},
        headers={"If-Match": got.headers["etag"]},
        as_=org.rep_a,
    )
    changed = await svc.ok(resp)
    assert changed["score"]["points"] == 5 and changed["score"]["qualified"] is False
    # With a rep already: the new score is recorded, the lead stays where it is.
    assert changed["status"] == "assigned" and changed["owner_id"] == org.rep_a.sub
    # Scored 100 on arrival (its `lead.received`), 5 now (`lead.scored`).
    scores = [
        (e.type, e.data["score"])
        for e in await svc.events({"lead.received", "lead.scored"})
        if e.subject == lead["id"]
    ]
    assert scores == [("lead.received", 100), ("lead.scored", 5)]


async def test_models_are_versions_that_never_change_once_used(opportunities, org):
    svc = opportunities
    assert (await svc.post(MODELS, json=model_body(), as_=org.manager_north)).status_code == 403
    assert (await svc.post(MODELS, json=model_body(), as_=key("scoring:read"))).status_code == 403
    created = await svc.post(MODELS, json=model_body(), as_=org.admin)
    v2 = await svc.ok(created, 201)
    assert v2["version"] == 2 and v2["status"] == "draft" and v2["max_points"] == 60
    by_key = await svc.ok(
        await svc.post(MODELS, json=model_body(size=10), as_=key("scoring:write")), 201
    )
    assert by_key["version"] == 3 and by_key["max_points"] == 70

    path = f"{MODELS}/{v2['id']}"
    assert (await svc.patch(path, json={"threshold": 50}, as_=org.admin)).status_code == 428
    patched = await svc.patch(
        path, json={"threshold": 50}, headers={"If-Match": created.headers["etag"]}, as_=org.admin
    )
    assert (await svc.ok(patched))["threshold"] == 50
    stale = await svc.patch(
        path, json={"threshold": 40}, headers={"If-Match": created.headers["etag"]}, as_=org.admin
    )
    assert stale.status_code == 412
    too_high = await svc.patch(
        path, json={"threshold": 61}, headers={"If-Match": patched.headers["etag"]}, as_=org.admin
    )
    assert too_high.status_code == 422

    active = await svc.ok(await svc.post(f"{path}/activate", as_=org.admin))
    assert active["status"] == "active" and active["activated_at"] is not None
    assert (await active_model(svc, org.rep_a))["version"] == 2
    page = await svc.ok(await svc.get(MODELS, as_=org.rep_a))
    assert [(m["version"], m["status"]) for m in page["items"]] == [
        (3, "draft"),
        (2, "active"),
        (1, "retired"),
    ]
    lead = await svc.push(evaluation={"need_urgency": "high", "budget_confirmed": "yes"})
    assert lead["score"]["version"] == 2 and lead["score"]["points"] == 60
    used = await svc.ok(await svc.get(path, as_=org.admin))
    assert used["used_at"] is not None
    # Used once, used from then on: a later lead leaves the time of its first use.
    await svc.push(evaluation={"need_urgency": "low"})
    assert (await svc.ok(await svc.get(path, as_=org.admin)))["used_at"] == used["used_at"]
    frozen = await svc.patch(path, json={"name": "x"}, headers={"If-Match": "*"}, as_=org.admin)
    assert frozen.status_code == 409
    # An input the active model does not know is refused (the old model's criteria are gone).
    refused = await svc.post(
        LEADS,
        json={"source": "web_form", "company": "X", "evaluation": {"purchase_cycle": "short"}},
        as_=key("leads:write"),
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["evaluation", "purchase_cycle"]


async def test_a_challenger_scores_beside_the_active_model_which_decides(opportunities, org):
    svc = opportunities
    challenger = await svc.ok(
        await svc.post(MODELS, json=model_body(threshold=40), as_=org.admin), 201
    )
    path = f"{MODELS}/{challenger['id']}"
    assert (await svc.post(f"{path}/challenge", as_=org.rep_a)).status_code == 403
    assert (await svc.ok(await svc.post(f"{path}/challenge", as_=org.admin)))[
        "status"
    ] == "challenger"

    lead = await svc.push(evaluation={"need_urgency": "high", "budget_confirmed": "no"})
    # The active model (v1) gives 25 of 100: nurtured; the challenger 40 of 60: it would qualify.
    assert lead["status"] == "nurturing"
    assert lead["score"]["version"] == 1 and lead["score"]["points"] == 25
    assert lead["challenger_score"]["version"] == 2
    assert lead["challenger_score"]["points"] == 40 and lead["challenger_score"]["qualified"]
    (scored,) = [e for e in await svc.events({"lead.received"}) if e.subject == lead["id"]]
    assert scored.data["challenger"]["score"] == 40 and scored.data["challenger"]["version"] == 2

    active = await active_model(svc, org.admin)
    refused = await svc.post(f"{MODELS}/{active['id']}/challenge", as_=org.admin)
    assert refused.status_code == 409
    await svc.ok(await svc.post(f"{path}/retire", as_=org.admin))
    later = await svc.push(evaluation={"need_urgency": "high"})
    assert later["challenger_score"] is None


def points_of(model: dict[str, Any], evaluation: dict[str, str]) -> int:
    """What `model` gives `evaluation`, from the model as the API shows it."""
    return sum(
        option["points"]
        for criterion in model["criteria"]
        for option in criterion["options"]
        if evaluation.get(criterion["key"]) == option["value"]
    )


async def test_a_bulk_call_scores_each_row_by_its_own_inputs(opportunities, org):
    """Rows with the same criteria and other options, the same inputs again (also in another
    order), fewer inputs and none, in one call large enough for its COPY: each lead's score
    by both models is its own inputs'."""
    svc = opportunities
    challenger = await svc.ok(
        await svc.post(MODELS, json=model_body(threshold=40), as_=org.admin), 201
    )
    await svc.ok(await svc.post(f"{MODELS}/{challenger['id']}/challenge", as_=org.admin))
    active = await active_model(svc, org.admin)
    evaluations = [
        {"need_urgency": "high", "budget_confirmed": "no"},
        {"need_urgency": "low", "budget_confirmed": "yes"},
        {"need_urgency": "medium", "budget_confirmed": "yes"},
        {"need_urgency": "high", "budget_confirmed": "no"},
        {"budget_confirmed": "no", "need_urgency": "high"},
        {"need_urgency": "low"},
        {},
    ] * 10
    rows = [
        {"source": "web_form", "external_id": f"s-{i}", "company": f"C {i}", "evaluation": e}
        for i, e in enumerate(evaluations)
    ]
    results = (await svc.ok(await svc.bulk(rows)))["results"]
    expected = [(points_of(active, e), points_of(challenger, e)) for e in evaluations]
    assert len(set(expected)) == 5  # the rows do score differently
    # The scores as stored and announced (a lead's read explains its inputs afresh).
    received = {e.subject: e.data for e in await svc.events({"lead.received"})}
    announced = [
        (received[r["id"]]["score"], received[r["id"]]["challenger"]["score"]) for r in results
    ]
    assert announced == expected
    stored = await svc.ok(await svc.get(LEADS, params={"limit": 100}, as_=org.admin))
    by_id = {lead["id"]: lead for lead in stored["items"]}
    assert [by_id[r["id"]]["score"]["points"] for r in results] == [a for a, _ in expected]


def test_a_request_reckons_each_distinct_evaluation_once_and_any_evaluation_right():
    """The memo of `score`: the same inputs (in any order) are reckoned once a request, by
    both models; inputs that cannot key it (a list under a key no model knows) are scored
    all the same."""
    lean = Scorer.of(SimpleNamespace(id=uuid.uuid4(), version=1, max_points=60, **model_body()))
    wide = Scorer.of(SimpleNamespace(id=uuid.uuid4(), version=2, max_points=60, **model_body(10)))
    reckoned: list[int] = []

    class Counted(Scorer):
        __slots__ = ()

        def points(self, evaluation: Any) -> int:
            reckoned.append(self.version)
            return Scorer.points(self, evaluation)

    active = Counted(lean.id, 1, 30, lean.max_points, lean.criteria)
    challenger = Counted(wide.id, 2, 10, wide.max_points, wide.criteria)
    work = Work(utcnow(), "tester", None, Scorers(active, challenger))  # type: ignore[arg-type]
    leads: list[dict[str, Any]] = [
        {"evaluation": {"need_urgency": "high", "budget_confirmed": "yes"}},
        {"evaluation": {"need_urgency": "low", "budget_confirmed": "yes"}},
        {"evaluation": {"need_urgency": "high", "budget_confirmed": "yes"}},
        {"evaluation": {"budget_confirmed": "yes", "need_urgency": "high"}},
        {"evaluation": {"need_urgency": "medium", "tags": ["a", "b"]}},
    ]
    for lead in leads:
        work.arrive(lead)  # as intake's: its `lead.received` tells the score
        score(work, lead)
    assert [(lead["score"], lead["challenger_score"]) for lead in leads] == [
        (60, 60),
        (20, 20),
        (60, 60),
        (60, 60),
        (20, 20),
    ]
    # Reckoned: the first, the second, the first in another order, the unkeyable one.
    assert reckoned == [1, 2] * 4


async def test_calibration_gives_the_brier_score_of_a_known_history(opportunities, org):
    svc = opportunities
    urgent = {
        "need_urgency": "high",
        "purchase_timing": "within_1_month",
        "purchase_cycle": "short",
        "decision_maker_identified": "yes",
    }
    # (inputs, points of 100 under the default model, won?)
    history = [
        (urgent, 80, True),
        (urgent, 80, False),
        (
            {"need_urgency": "low", "purchase_cycle": "long", "budget_confirmed": "partial"},
            20,
            False,
        ),
        (
            {
                "need_urgency": "medium",
                "purchase_timing": "within_3_months",
                "purchase_cycle": "medium",
            },
            40,
            True,
        ),
    ]
    for evaluation, points, won in history:
        opportunity = await svc.opportunity(
            org.manager_north, org.rep_a, lead={"evaluation": evaluation}
        )
        lead = await svc.lead(opportunity["lead_id"], as_=org.rep_a)
        assert lead["score"]["points"] == points
        if won:
            await svc.ok(await svc.move(opportunity["id"], org.rep_a, "won", amount="500.00"))
        else:
            await svc.ok(await svc.move(opportunity["id"], org.rep_a, "lost", lost_reason="price"))
    # One still open: not part of the history.
    await svc.opportunity(org.manager_north, org.rep_b)

    active = await active_model(svc, org.admin)
    assert (await svc.get(f"{MODELS}/{active['id']}/calibration", as_=org.rep_a)).status_code == 403
    result = await svc.ok(
        await svc.get(f"{MODELS}/{active['id']}/calibration", as_=org.manager_north)
    )
    (cal,) = result["models"]
    # Predicted 0.8, 0.8, 0.2, 0.4 for won, lost, lost, won:
    # ((0.2)^2 + 0.8^2 + 0.2^2 + 0.6^2) / 4 = 0.27
    assert cal["opportunities"] == 4 and cal["won"] == 2
    assert cal["brier_score"] == pytest.approx(0.27)
    rates = {(b["low"], b["high"]): (b["opportunities"], b["won"]) for b in cal["bands"]}
    assert rates == {
        (0, 20): (0, 0),
        (20, 40): (1, 0),
        (40, 60): (1, 1),
        (60, 80): (0, 0),
        (80, 100): (2, 1),
    }
    assert cal["qualified"] == {"opportunities": 2, "won": 1, "win_rate": 0.5}
    assert cal["not_qualified"] == {"opportunities": 2, "won": 1, "win_rate": 0.5}

    # A draft is judged on the same history, beside the active model.
    draft = await svc.ok(await svc.post(MODELS, json=model_body(), as_=org.admin), 201)
    both = await svc.ok(
        await svc.get(f"{MODELS}/{draft['id']}/calibration", as_=key("scoring:read"))
    )
    assert [m["version"] for m in both["models"]] == [2, 1]
    lean = both["models"][0]
    # Urgency high/high/low/medium -> 40, 40, 0, 20 of 60: p = 2/3, 2/3, 0, 1/3.
    expected = ((1 - 2 / 3) ** 2 + (2 / 3) ** 2 + 0 + (1 - 1 / 3) ** 2) / 4
    assert lean["brier_score"] == pytest.approx(expected, abs=1e-6)
    empty = await svc.ok(
        await svc.get(
            f"{MODELS}/{draft['id']}/calibration",
            params={"from": "2000-01-01", "to": "2000-02-01"},
            as_=org.admin,
        )
    )
    assert empty["models"][0]["opportunities"] == 0 and empty["models"][0]["brier_score"] is None
    bad = await svc.get(
        f"{MODELS}/{draft['id']}/calibration", params={"from": "2024-02-30"}, as_=org.admin
    )
    assert bad.status_code == 422
