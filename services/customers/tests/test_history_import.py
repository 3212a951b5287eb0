"""Moving in from another system: customers created in the past, with the owner and the level
they held since some date, through the single create and the import; reps and managers may
not bring history."""

from __future__ import annotations

from datetime import datetime, timedelta

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
IMPORT = f"{API}/import"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_customer_with_a_past_keeps_its_times_in_history_ledger_and_events(
    customers, org, clock
):
    now = clock.now()
    created = now - timedelta(days=3 * 365)
    owner_since = now - timedelta(days=2 * 365)
    level_since = now - timedelta(days=365)
    body = {
        "name": "Old Friend Ltd",
        "region": "east",
        "level": "A",
        "owner_id": org.rep_a.sub,
        "created_at": created.isoformat(),
        "owner_since": owner_since.isoformat(),
        "level_since": level_since.isoformat(),
    }
    resp = await customers.post(API, json=body, as_=org.admin)
    assert resp.status_code == 201, resp.text
    c = resp.json()
    assert _at(c["created_at"]) == created and _at(c["level_since"]) == level_since
    assert _at(c["status_since"]) == created

    history = (await customers.get(f"{API}/{c['id']}/history", as_=org.admin)).json()["items"]
    # Newest first, in the order they happened.
    assert [(e["action"], _at(e["at"])) for e in history] == [
        ("level_changed", level_since),
        ("owner_changed", owner_since),
        ("created", created),
    ]
    assert history[1]["changes"]["owner_id"] == {"old": None, "new": org.rep_a.sub}
    assert history[0]["changes"] == {"level": {"old": None, "new": "A"}}
    assert "level" not in history[2]["changes"] and "owner_id" not in history[2]["changes"]
    ledger = (await customers.get(f"{API}/{c['id']}/ownership", as_=org.admin)).json()
    assert [(p["owner_id"], _at(p["started_at"]), p["ended_at"]) for p in ledger] == [
        (org.rep_a.sub, owner_since, None)
    ]
    (event,) = await customers.events({"customer.created"})
    assert _at(event.data["occurred_at"]) == created
    assert _at(event.data["owner_since"]) == owner_since
    assert _at(event.data["level_since"]) == level_since
    # The feed keeps the order of the writes; the event's own time is when it was written.
    assert event.time >= now

    # As of a day between its creation and its owner: in the archive, no owner, level unknown.
    past = await customers.get(
        f"{API}/{c['id']}",
        params={"as_of": (created + timedelta(days=30)).isoformat()},
        as_=org.admin,
    )
    assert past.status_code == 200, past.text
    assert (past.json()["owner_id"], past.json()["level"], past.json()["level_info"]) == (
        None,
        None,
        None,
    )
    assert past.json()["ownership"] == []
    later = await customers.get(
        f"{API}/{c['id']}",
        params={"as_of": (level_since + timedelta(days=1)).isoformat()},
        as_=org.admin,
    )
    assert later.json()["level"] == "A" and later.json()["owner_id"] == org.rep_a.sub
    before = await customers.get(
        f"{API}/{c['id']}",
        params={"as_of": (created - timedelta(days=1)).isoformat()},
        as_=org.admin,
    )
    assert before.status_code == 404


async def test_only_admins_and_keys_bring_history_and_times_are_checked(customers, org, clock):
    now = clock.now()
    past = {"name": "P", "region": "EAST", "created_at": (now - timedelta(days=9)).isoformat()}
    for who in (org.rep_a, org.manager_north):
        denied = await customers.post(API, json=past, as_=who)
        assert denied.status_code == 403, who
        assert "customers:write" in denied.json()["detail"]
    reader = make_principal("integration", kind="key", scopes=["customers:read"])
    assert (await customers.post(API, json=past, as_=reader)).status_code == 403
    erp = make_principal("integration", kind="key", scopes=["customers:write"])
    assert (await customers.post(API, json=past, as_=erp)).status_code == 201

    for body, field in (
        ({"created_at": (now + timedelta(days=1)).isoformat()}, "created_at"),
        (
            {
                "created_at": (now - timedelta(days=5)).isoformat(),
                "owner_id": org.rep_a.sub,
                "owner_since": (now - timedelta(days=6)).isoformat(),
            },
            "owner_since",
        ),
        ({"owner_since": (now - timedelta(days=1)).isoformat()}, "owner_since"),
        ({"level_since": (now + timedelta(hours=1)).isoformat()}, "level_since"),
        ({"created_at": "2020-01-01T00:00:00"}, "created_at"),
    ):
        bad = await customers.post(
            API, json={"name": "Bad", "region": "EAST", **body}, as_=org.admin
        )
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["errors"][0]["loc"][-1] == field


async def test_an_import_brings_past_customers_in_the_order_they_came(customers, org, clock):
    now = clock.now()
    rows = [
        {
            "name": "Younger",
            "region": "south",
            "external_ref": "Y",
            "source": "old-crm",
            "owner_id": org.rep_a.sub,
            "created_at": (now - timedelta(days=100)).isoformat(),
        },
        {
            "name": "Older",
            "region": "south",
            "external_ref": "O",
            "source": "old-crm",
            "owner_id": org.rep_a.sub,
            "created_at": (now - timedelta(days=900)).isoformat(),
            "owner_since": (now - timedelta(days=800)).isoformat(),
        },
        {
            "name": "Too new",
            "region": "south",
            "external_ref": "N",
            "source": "old-crm",
            "created_at": (now + timedelta(days=2)).isoformat(),
        },
    ]
    resp = await customers.post(IMPORT, json={"rows": rows}, as_=org.admin)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["created"], body["errors"]) == (2, 1)
    assert "created_at" in body["results"][2]["error"]
    younger, older = [
        (await customers.get(f"{API}/{r['id']}", as_=org.admin)).json() for r in body["results"][:2]
    ]
    # Numbered in the order they came to be.
    assert (older["code"], younger["code"]) == ("SOUTH-C-000001", "SOUTH-C-000002")
    assert _at(older["ownership"][0]["started_at"]) == now - timedelta(days=800)
    assert _at(younger["created_at"]) == now - timedelta(days=100)

    # A manager may import, but not a past.
    denied = await customers.post(
        IMPORT,
        json={"rows": [{"name": "M", "region": "EAST", "created_at": rows[0]["created_at"]}]},
        as_=org.manager_north,
    )
    assert denied.status_code == 403
    # An export file carries created_at: importing it again changes nothing, for anyone.
    exported = (await customers.get(f"{API}/export", as_=org.manager_north)).text
    assert (
        await customers.post(
            IMPORT, content=exported.encode(), headers={"Content-Type": "text/csv"}, as_=org.admin
        )
    ).json()["unchanged"] == 2


async def test_a_csv_import_brings_the_past_too_and_a_rep_may_not(customers, org, clock):
    now = clock.now()
    created = (now - timedelta(days=700)).replace(microsecond=0)
    owner_since = created + timedelta(days=100)
    level_since = created + timedelta(days=200)
    csv = (
        "name,region,level,owner_id,created_at,owner_since,level_since\n"
        f"Csv Old,WEST,B,{org.rep_b.sub},{created.isoformat()},{owner_since.isoformat()},"
        f"{level_since.isoformat()}\n"
    ).encode()
    h = {"Content-Type": "text/csv"}
    assert (await customers.post(IMPORT, content=csv, headers=h, as_=org.rep_a)).status_code == 403
    # A manager imports customers, but not their past.
    denied = await customers.post(IMPORT, content=csv, headers=h, as_=org.manager_north)
    assert denied.status_code == 403, denied.text
    assert "customers:write" in denied.json()["detail"]

    resp = await customers.post(IMPORT, content=csv, headers=h, as_=org.admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 1, resp.text
    cid = resp.json()["results"][0]["id"]
    c = (await customers.get(f"{API}/{cid}", as_=org.admin)).json()
    assert _at(c["created_at"]) == created and _at(c["level_since"]) == level_since
    assert [(p["owner_id"], _at(p["started_at"])) for p in c["ownership"]] == [
        (org.rep_b.sub, owner_since)
    ]
    history = (await customers.get(f"{API}/{cid}/history", as_=org.admin)).json()["items"]
    assert [(e["action"], _at(e["at"])) for e in history] == [
        ("level_changed", level_since),
        ("owner_changed", owner_since),
        ("created", created),
    ]
    (event,) = await customers.events({"customer.created"})
    assert _at(event.data["occurred_at"]) == created
    assert _at(event.data["owner_since"]) == owner_since
