"""Issue 12's access findings, through the real gateway: a change request decided after its
customer changed or moved is refused (409) and never overwrites anything, its author withdraws
it, every step is in the customers feed (read with a key of that feed's scope only); likely
duplicates and 409s describe no record the caller may not see. Which scope opens which
endpoint, as every role and key: `test_access_matrix.py`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from conftest import ok, organisation, wait_for

pytestmark = pytest.mark.e2e
API = "/api/v1/customers"
REQUESTS = f"{API}/change-requests"
PASSWORD = "pw-" + uuid.uuid4().hex[:12]


@pytest.fixture
async def org(gw, stack) -> dict[str, Any]:
    admin = (stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"])
    made = await organisation(gw, admin, PASSWORD)
    north = made["teams"]["north"]["id"]

    async def reps_known() -> bool:
        # The customers service learns the reps and their team from identity's feed.
        for rep in ("rep_a", "rep_b"):
            resp = await gw.post(
                API,
                json={"name": f"Probe {uuid.uuid4().hex}", "region": "PROBE"},
                params={"confirm_duplicates": "true"},
                headers=made["h"][rep],
            )
            if resp.status_code != 201 or resp.json()["team_id"] != north:
                return False
        return True

    await wait_for(reps_known)
    return made


async def _file(gw: httpx.AsyncClient, rep: dict[str, str], customer: dict[str, Any]) -> str:
    resp = await gw.patch(
        f"{API}/{customer['id']}",
        json={"level": "A"},
        headers={**rep, "If-Match": f'"{customer["version"]}"'},
    )
    filed = await ok(resp, 202)
    assert filed["base_version"] == customer["version"]
    return str(filed["id"])


async def _feed(gw: httpx.AsyncClient, key: dict[str, str], subjects: set[str]) -> list[Any]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": "1000", **({"after": after} if after else {})}
        page = await ok(await gw.get("/api/v1/events/customers", params=params, headers=key))
        out += [e for e in page["items"] if e["subject"] in subjects]
        after = page["next_cursor"]
        if not page["has_more"]:
            return out


async def test_a_stale_change_request_is_refused_and_each_step_is_an_event(gw, org):
    h, users = org["h"], org["users"]
    created = await gw.post(
        API,
        json={"name": f"Stale Co. {uuid.uuid4().hex[:8]}", "region": "EAST"},
        headers=h["rep_a"],
    )
    c = await ok(created, 201)
    level = c["level"]
    url = f"{API}/{c['id']}"

    # Changed by someone else after it was filed: the approval overwrites nothing (409).
    first = await _file(gw, h["rep_a"], c)
    direct = await gw.patch(
        url, json={"industry": "logistics"}, headers={**h["manager"], "If-Match": '"1"'}
    )
    changed = await ok(direct)
    stale = await gw.post(f"{REQUESTS}/{first}/approve", json={}, headers=h["manager"])
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"] == "/problems/customer-changed-since-request"
    assert stale.json()["base_version"] == 1 and stale.json()["current_version"] == 2
    now = await ok(await gw.get(url, headers=org["admin"]))
    assert (now["level"], now["industry"], now["version"]) == (level, "logistics", 2)

    # Withdrawn by its author only: another rep is told nothing, the manager is refused.
    withdraw = f"{REQUESTS}/{first}/withdraw"
    assert (await gw.post(withdraw, json={}, headers=h["rep_b"])).status_code == 404
    assert (await gw.post(withdraw, json={}, headers=h["manager"])).status_code == 403
    withdrawn = await ok(await gw.post(withdraw, json={}, headers=h["rep_a"]))
    assert withdrawn["status"] == "withdrawn"

    # Filed again, then the rep moves to the south team: the request does not follow the
    # customer, and the north manager, who no longer sees it, cannot decide it.
    second = await _file(gw, h["rep_a"], changed)
    moved = await gw.patch(
        f"/api/v1/users/{users['rep_a']['id']}",
        json={"team_id": org["teams"]["south"]["id"]},
        headers=org["admin"],
    )
    await ok(moved)

    async def cancelled() -> bool:
        mine = await gw.get(f"{REQUESTS}/{second}", headers=h["rep_a"])
        return mine.status_code == 200 and bool(mine.json()["status"] == "cancelled")

    await wait_for(cancelled)
    late = await gw.post(f"{REQUESTS}/{second}/approve", json={}, headers=h["manager"])
    assert late.status_code == 409, late.text
    assert late.json()["type"] == "/problems/change-request-decided"
    assert "cancelled" in late.json()["detail"]
    # Nor does the new team's manager inherit it.
    south = await gw.post(f"{REQUESTS}/{second}/approve", json={}, headers=h["other_manager"])
    assert south.status_code == 404, south.text
    now = await ok(await gw.get(url, headers=h["other_manager"]))
    assert now["level"] == level and now["team_id"] == org["teams"]["south"]["id"]
    assert (await gw.get(url, headers=h["manager"])).status_code == 404

    # Every step is an event of the customers feed, read with that feed's scope alone.
    made = await gw.post(
        "/api/v1/api-keys",
        json={"name": f"crm feed {uuid.uuid4().hex[:6]}", "scopes": ["events:customers"]},
        headers=org["admin"],
    )
    key = {"X-API-Key": (await ok(made, 201))["key"]}
    assert (await gw.get("/api/v1/events/identity", headers=key)).status_code == 403
    events = await _feed(gw, key, {first, second})
    assert [(e["subject"], e["type"]) for e in events] == [
        (first, "change_request.filed"),
        (first, "change_request.withdrawn"),
        (second, "change_request.filed"),
        (second, "change_request.cancelled"),
    ]
    assert events[0]["data"]["customer_code"] == c["code"]


def _leaks(text: str, record: dict[str, Any]) -> list[str]:
    return [v for v in (record["id"], record["code"], record["name"]) if v in text]


async def test_duplicates_and_conflicts_describe_only_what_the_caller_may_see(gw, org):
    h = org["h"]
    tag = uuid.uuid4().hex[:8]
    phone = f"021-{int(tag[:6], 16) % 10_000_000:07d}"
    theirs = await ok(
        await gw.post(
            API,
            json={
                "name": f"Harbour {tag} Tools Ltd",
                "region": "EAST",
                "phone": phone,
                "source": "erp",
                "external_ref": f"ERP-{tag}",
            },
            headers=h["rep_a"],
        ),
        201,
    )
    # Another rep of the same team may not see it: the likely duplicate is one entry without
    # any identifying field.
    body = {"name": f"Harbour {tag} Tools", "region": "WEST", "phone": phone}
    dup = await gw.post(API, json=body, headers=h["rep_b"])
    assert dup.status_code == 409, dup.text
    assert _leaks(dup.text, theirs) == [] and theirs["owner_id"] not in dup.text
    (candidate,) = dup.json()["candidates"]
    assert set(candidate) == {"visible", "note", "matched_on"} and candidate["visible"] is False
    assert candidate["note"] == "a likely duplicate exists that you cannot see"
    # Their manager is told which record it is.
    shown = await gw.post(API, json=body, headers=h["manager"])
    assert shown.status_code == 409
    assert [c["id"] for c in shown.json()["candidates"]] == [theirs["id"]]

    # A claim on a customer that is not in the pool: a 404 to who may not see it.
    claim = await gw.post(f"{API}/{theirs['id']}/claim", headers=h["rep_b"])
    assert claim.status_code == 404 and claim.json()["type"] == "/problems/not-found"
    assert theirs["code"] not in claim.text and theirs["owner_id"] not in claim.text

    # A taken external_ref names its holder only to who may see it.
    reused = {"name": f"Other {tag}", "region": "WEST", "source": "erp"}
    reused["external_ref"] = f"ERP-{tag}"
    hidden = await gw.post(API, json=reused, headers=h["rep_b"])
    assert hidden.status_code == 409, hidden.text
    assert "existing_id" not in hidden.json() and _leaks(hidden.text, theirs) == []
    named = await gw.post(API, json=reused, headers=h["manager"])
    assert named.status_code == 409 and named.json()["existing_id"] == theirs["id"]


async def test_a_lead_converts_only_onto_a_customer_the_converting_rep_may_see(gw, org):
    h, users = org["h"], org["users"]
    tag = uuid.uuid4().hex[:8]
    phone = f"139{int(tag, 16) % 10**8:08d}"
    theirs = await ok(
        await gw.post(
            API,
            json={"name": f"Matched {tag}", "region": "EAST", "phone": phone},
            headers=h["rep_a"],
        ),
        201,
    )
    lead: dict[str, Any] = {}

    async def matched() -> bool:
        # The opportunities service learns the customer from the customers feed.
        body = {"source": "web_form", "company": f"Lead {tag}", "phone": phone, "region": "EAST"}
        pushed = await ok(await gw.post("/api/v1/leads", json=body, headers=org["admin"]), 201)
        lead.update(pushed)
        return bool(pushed["customer_id"] == theirs["id"])

    await wait_for(matched)
    url = f"/api/v1/leads/{lead['id']}"
    assign = {"owner_id": users["rep_b"]["id"]}
    await ok(await gw.post(f"{url}/assign", json=assign, headers=h["manager"]))
    # rep_b may not see rep_a's customer: no opportunity of theirs is opened on it.
    refused = await gw.post(f"{url}/convert", json={}, headers=h["rep_b"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["customer_id"]
    assert theirs["code"] not in refused.text and theirs["name"] not in refused.text
    assert (await ok(await gw.get(url, headers=h["rep_b"])))["status"] == "assigned"
    # Handed to the customer's own rep, it converts onto that customer.
    assign = {"owner_id": users["rep_a"]["id"]}
    await ok(await gw.post(f"{url}/assign", json=assign, headers=h["manager"]))
    done = await ok(await gw.post(f"{url}/convert", json={}, headers=h["rep_a"]), 201)
    assert done["customer_id"] == theirs["id"] and done["customer_created"] is False
