"""Lead intake: one lead or up to 10,000 a call, dedup on source + external_id (in one call,
across calls, concurrently), per-row outcomes, Idempotency-Key, CSV, the customer a lead
belongs to, and bad input refused as a 422 that writes nothing."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import orjson

from opportunities.leads import intake
from opportunities.leads.schemas import ATTRIBUTES_MAX_BYTES, ATTRIBUTES_MAX_DEPTH
from servicekit.fields import json_fits
from servicekit.inputs import may_hold_refusals
from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
WRITER = make_principal("integration", kind="key", scopes=["leads:write"])
READER = make_principal("integration", kind="key", scopes=["leads:read"])


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


async def count_leads(svc) -> int:
    total, cursor = 0, None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = await svc.ok(await svc.get(LEADS, params=params, as_=READER))
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


async def test_the_same_lead_pushed_twice_is_one_lead_updated_when_it_changed(opportunities, org):
    svc = opportunities
    body = {
        "source": "trade_show",
        "external_id": "TS-2024-001",
        "company": "Golden River Trading",
        "contact_name": "Li Wei",
        "phone": "138-0013-8000",
        "region": " east ",
        "evaluation": svc.HOT,
        "attributes": {"booth": "B12", "score_card": [1, 2, 3]},
    }
    first = await svc.post(LEADS, json=body, as_=WRITER)
    assert first.status_code == 201, first.text
    lead = first.json()
    assert first.headers["location"] == f"{LEADS}/{lead['id']}"
    assert lead["region"] == "EAST" and lead["attributes"] == body["attributes"]
    assert lead["status"] == "qualified" and lead["version"] == 1

    again = await svc.post(LEADS, json=body, as_=WRITER)
    assert again.status_code == 200
    assert again.json()["id"] == lead["id"] and again.json()["version"] == 1

    changed = await svc.post(LEADS, json={**body, "phone": "139 0000 0000"}, as_=WRITER)
    assert changed.status_code == 200
    assert changed.json()["id"] == lead["id"]
    assert changed.json()["phone"] == "139 0000 0000" and changed.json()["version"] == 2

    assert await count_leads(svc) == 1
    types = [e.type for e in await svc.events() if e.subject == lead["id"]]
    assert types.count("lead.received") == 1
    assert types.count("lead.updated") == 1


async def test_bulk_gives_one_outcome_per_row_and_a_bad_row_never_blocks_the_good_ones(
    opportunities,
):
    svc = opportunities
    known = await svc.push(external_id="K-1", company="Known Co", evaluation=svc.COLD)
    rows = [
        {"source": "web_form", "external_id": "N-1", "company": "New One", "evaluation": svc.HOT},
        {"source": "web_form", "external_id": "N-1", "company": "New One", "evaluation": svc.HOT},
        {"source": "web_form", "external_id": "N-1", "company": "New One Ltd"},
        {"source": "web_form", "external_id": "K-1", "company": "Known Co"},
        {"source": "web_form", "external_id": "K-1", "need": "toner, 40 boxes a month"},
        {"source": "fax", "company": "Wrong Source"},
        {"source": "web_form", "company": "Bad Mail", "email": "not-an-address"},
        {"source": "web_form", "company": "Nul\x00Byte"},
        {"source": "web_form", "company": "Big", "attributes": {"n": 2**70}},
        {"source": "web_form", "company": "Bad Date", "received_at": "2024-13-45T00:00:00Z"},
        {"source": "web_form", "company": "Naive Date", "received_at": "2024-05-01T10:00:00"},
        {"source": "web_form", "company": "Odd Input", "evaluation": {"mood": "happy"}},
        {"source": "web_form", "company": "Odd Option", "evaluation": {"need_urgency": "max"}},
        {"source": "web_form"},
        "not an object",
        {"source": "web_form", "company": "Extra", "colour": "blue"},
    ]
    resp = await svc.bulk(rows)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    outcomes = [r["outcome"] for r in result["results"]]
    assert outcomes[:5] == ["created", "unchanged", "updated", "unchanged", "updated"]
    assert outcomes[5:] == ["error"] * 11
    assert (result["created"], result["updated"], result["unchanged"], result["errors"]) == (
        1,
        2,
        2,
        11,
    )
    ids = {r["id"] for r in result["results"][:3]}
    assert len(ids) == 1  # one lead, however often a call names it
    assert result["results"][3]["id"] == known["id"]
    errors = {r["row"]: r["error"] for r in result["results"] if r["outcome"] == "error"}
    assert "source" in errors[5] and "email" in errors[6] and "NUL" in errors[7]
    assert "number" in errors[8] and "received_at" in errors[9] and "received_at" in errors[10]
    assert "mood" in errors[11] and "need_urgency" in errors[12] and "company" in errors[13]
    assert "object" in errors[14] and "colour" in errors[15]

    new = await svc.lead(result["results"][0]["id"], as_=READER)
    # The last row naming it decides its content; it was scored with that content.
    assert new["company"] == "New One Ltd" and new["score"]["points"] == 100
    assert (await svc.lead(known["id"], as_=READER))["need"] == "toner, 40 boxes a month"
    assert await count_leads(svc) == 2


async def test_a_bulk_lead_keeps_every_field_it_was_pushed_with(opportunities):
    """Each field of each row lands in its lead, in a call large enough for its COPY: those
    given, the region in its normal form, the time received when given (else the call's)."""
    svc = opportunities
    rows = [
        {
            "source": ("web_form", "trade_show")[i % 2],
            "external_id": f"F-{i}",
            "company": f"Field Co {i}",
            "contact_name": f"Contact {i}",
            "phone": f"+86 138 0000 {i:04d}",
            "email": f"lead{i}@example.com",
            "region": " east ",
            "industry": f"Industry {i}",
            "need": f"need {i}",
            "evaluation": svc.HOT if i % 3 else svc.COLD,
            "attributes": {"form": f"f{i}", "n": i},
            **({"received_at": "2026-01-02T03:04:05+00:00"} if i % 2 else {}),
        }
        for i in range(70)
    ]
    result = await svc.ok(await svc.bulk(rows))
    assert result["created"] == 70
    for i in (0, 1, 37, 69):
        lead = await svc.lead(result["results"][i]["id"], as_=READER)
        row = rows[i]
        assert {k: lead[k] for k in row if k not in ("region", "received_at")} == {
            k: v for k, v in row.items() if k not in ("region", "received_at")
        }
        assert lead["region"] == "EAST"
        if "received_at" in row:
            assert lead["received_at"] == "2026-01-02T03:04:05Z"
        else:
            assert lead["received_at"] == lead["created_at"]


async def test_the_same_leads_pushed_concurrently_are_one_lead_each(opportunities):
    svc = opportunities
    rows = [
        {"source": "partner", "external_id": f"P-{i}", "company": f"Partner lead {i}"}
        for i in range(50)
    ]
    single = {"source": "partner", "external_id": "P-0", "company": "Partner lead 0"}
    answers = await asyncio.gather(
        *(svc.bulk(rows) for _ in range(4)),
        *(svc.post(LEADS, json=single, as_=WRITER) for _ in range(3)),
    )
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    created = sum(a.json()["created"] for a in answers[:4]) + sum(
        a.status_code == 201 for a in answers[4:]
    )
    assert created == 50
    assert await count_leads(svc) == 50
    received = [e for e in await svc.events({"lead.received"})]
    assert len(received) == 50


async def test_rows_of_a_body_without_unstorable_values_are_checked_as_strictly(opportunities):
    """A body that cannot hold a refused value (no U+0000, no surrogate, no NaN, no huge
    number anywhere) is validated the quick way; its rows get the same checks and the same
    errors as the rows of a body that may."""
    svc = opportunities
    rows = [
        {"source": "web_form", "company": "Fine", "attributes": {"campaign": "c1", "n": 12}},
        {"source": "web_form", "company": "Deep", "attributes": {"a": {"b": {"c": {"d": {}}}}}},
        {"source": "web_form", "company": "Deeper", "attributes": {"a": [[{"b": [[{}]]}]]}},
        {"source": "web_form", "company": "Wide", "attributes": {"n": 2**55}},
        {"source": "web_form", "company": "Far", "attributes": {"ratio": 1.5e20}},
        {"source": "web_form", "company": "Large", "attributes": {"text": "x" * 9000}},
        {"source": "web_form", "company": "Brackets", "attributes": {"t": "[[[{{{ ok 1e9"}},
        {"source": "web_form", "company": "Two", "email": "nope", "attributes": {"a": 2**56}},
        {"source": "web_form", "company": "   "},
    ]
    clean = orjson.dumps({"rows": rows})
    suspect = orjson.dumps({"rows": [*rows, {"source": "web_form", "company": "N\x00L"}]})
    assert not may_hold_refusals(clean) and may_hold_refusals(suspect)
    answers = []
    for body in (clean, suspect):
        answers.append((await _push_json(svc, body))["results"][: len(rows)])
    quick, walked = answers
    outcomes = ["created", "created", "error", "error", "error", "error", "created"]
    assert [r["outcome"] for r in quick] == [*outcomes, "error", "error"]
    # The same error texts either way, every error of a row named.
    assert [r["error"] for r in quick] == [r["error"] for r in walked]
    errors = [r["error"] for r in quick]
    assert "nests deeper" in errors[2] and "beyond" in errors[3] and "beyond" in errors[4]
    assert "larger than 8192 bytes" in errors[5]
    assert "email" in errors[7] and "attributes" in errors[7] and "company" in errors[8]
    kept = await svc.lead(quick[6]["id"], as_=READER)
    assert kept["attributes"] == {"t": "[[[{{{ ok 1e9"}


async def test_a_body_validated_in_one_pass_gives_the_outcomes_of_the_row_by_row_path(
    opportunities,
):
    """A clean JSON body whose rows all pass validation is validated from its bytes in one
    pass; one bad row sends the whole body row by row. Both give each row the same outcome,
    error, status, stored lead and events."""
    svc = opportunities

    def rows(tag: str) -> list[dict[str, Any]]:
        return [
            {
                "source": "web_form",
                "external_id": f"{tag}-1",
                "company": " Spaced Co ",
                "region": "east",
                "evaluation": svc.HOT,
                "attributes": {"campaign": "c1", "n": 3},
            },
            {"source": "web_form", "external_id": f"{tag}-1", "company": "Spaced Co Ltd"},
            {
                "source": "partner",
                "external_id": f"{tag}-2",
                "contact_name": "Li Lei",
                "email": " li@example.com ",
                "evaluation": svc.COLD,
                "received_at": "2024-05-01T10:00:00+08:00",
            },
            {"source": "fax", "company": "Wrong Source"},
            {"source": "web_form", "company": "Odd Input", "evaluation": {"mood": "happy"}},
            {"source": "web_form", "external_id": f"{tag}-3"},
            {"source": "referral", "company": "No Key", "attributes": {"deep": {"a": [1, 2]}}},
            {
                "source": "web_form",
                "external_id": f"{tag}-4",
                "company": "Long Number",
                "attributes": {"pi": 3.141592653589793},
            },
        ]

    bad = {"source": "web_form", "company": "Bad Mail", "email": "not-an-address"}
    one_pass = orjson.dumps({"rows": rows("A")})
    by_row = orjson.dumps({"rows": [*rows("B"), bad]})
    assert intake.validated_body(one_pass, "application/json") is not None
    assert intake.validated_body(by_row, "application/json") is None
    answers = []
    for body in (one_pass, by_row):
        before = len(await svc.events())
        result = await _push_json(svc, body)
        leads: list[Any] = [
            None if r["id"] is None else await svc.lead(r["id"], as_=READER)
            for r in result["results"]
        ]
        kinds = sorted(e.type for e in (await svc.events())[before:])
        answers.append((result, leads, kinds))
    (fast, fast_leads, fast_events), (slow, slow_leads, slow_events) = answers
    n = len(rows("A"))
    assert [r["outcome"] for r in fast["results"]] == [
        "created",
        "updated",
        "created",
        "error",
        "error",
        "error",
        "created",
        "created",
    ]
    assert slow["results"][n]["outcome"] == "error" and "email" in slow["results"][n]["error"]
    for key in ("outcome", "status", "error"):
        assert [r[key] for r in fast["results"]] == [r[key] for r in slow["results"][:n]]
    assert (fast["created"], fast["updated"], fast["errors"]) == (
        slow["created"],
        slow["updated"],
        slow["errors"] - 1,
    )
    differ = {"id", "external_id", "created_at", "updated_at", "received_at"}
    for got, want in zip(fast_leads, slow_leads[:n], strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            assert {k: v for k, v in got.items() if k not in differ} == {
                k: v for k, v in want.items() if k not in differ
            }
    assert fast_leads[0]["company"] == "Spaced Co Ltd" and fast_leads[0]["region"] == "EAST"
    assert fast_leads[2]["email"] == "li@example.com"
    assert fast_leads[2]["received_at"] == slow_leads[2]["received_at"]
    assert fast_leads[7]["attributes"] == {"pi": 3.141592653589793}
    assert fast_events == slow_events and "lead.received" in fast_events


def test_the_attributes_of_a_body_are_checked_together_as_each_row_alone():
    """`attributes_fit` checks all rows' attributes at once before one by one: it says what
    `json_fits` says of every row's, on random mixes of flat, nested, long and numeric ones."""
    rng = random.Random(3)
    kinds: list[dict[str, Any]] = [
        {"campaign": "c1", "form": "contact-us"},
        {"n": 12, "ok": True, "none": None},
        {"deep": {"a": [1, {"b": 2}]}},
        {"deeper": [[[[[{}]]]]]},
        {"big": 2**56},
        {"far": 1.5e20},
        {"text": "x" * 9000},
        {"text": "y" * 4000, "more": "z" * 4000},
        {"t": "[[[{{{ 1e9"},
        {"pi": 3.141592653589793},
    ]
    for _ in range(400):
        given = [rng.choice(kinds) for _ in range(rng.randrange(1, 6))]
        alone = all(
            json_fits(
                orjson.dumps(a),
                max_bytes=ATTRIBUTES_MAX_BYTES,
                max_depth=ATTRIBUTES_MAX_DEPTH,
            )
            for a in given
        )
        assert intake.attributes_fit(given) == alone, given
    assert intake.attributes_fit([]) and intake.attributes_fit([kinds[0]] * 10_000)


async def test_a_retried_bulk_call_with_its_idempotency_key_changes_nothing(opportunities):
    svc = opportunities
    rows = [
        {"source": "referral", "company": f"Referred {i}", "evaluation": svc.HOT} for i in range(3)
    ]
    headers = {"Idempotency-Key": "import-2024-05-01"}
    first = await svc.bulk(rows, as_=WRITER, headers=headers)
    assert first.status_code == 200 and first.json()["created"] == 3
    events = len(await svc.events())

    retried = await svc.bulk(rows, as_=WRITER, headers=headers)
    assert retried.status_code == 200
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json() == first.json()
    assert await count_leads(svc) == 3  # rows without external_id would have doubled
    assert len(await svc.events()) == events

    other = await svc.bulk(rows[:1], as_=WRITER, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert await count_leads(svc) == 3


async def test_csv_rows_carry_inputs_and_attributes_and_bad_csv_is_refused(opportunities):
    svc = opportunities
    csv_body = (
        "source,external_id,company,phone,region,evaluation.need_urgency,"
        "evaluation.budget_confirmed,attributes.campaign\n"
        "advertising,AD-1,Bright Star Foods,13800138000,north,high,yes,spring\n"
        "advertising,AD-2,Jade Logistics,,north,,,\n"
        "advertising,AD-3,Too Many,1,north,low,no,x,surplus\n"
        "advertising,AD-4,Odd,,north,extreme,,\n"
    )
    resp = await svc.post(
        LEADS + "/bulk",
        content=csv_body.encode(),
        headers={"Content-Type": "text/csv"},
        as_=WRITER,
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["outcome"] for r in results] == ["created", "created", "error", "error"]
    first = await svc.lead(results[0]["id"], as_=READER)
    assert first["evaluation"] == {"need_urgency": "high", "budget_confirmed": "yes"}
    assert first["attributes"] == {"campaign": "spring"}
    assert first["score"]["points"] == 45 and first["status"] == "nurturing"
    assert (await svc.lead(results[1]["id"], as_=READER))["evaluation"] == {}

    # A NUL in a cell is that row's error: the other rows go in.
    nul = await svc.post(
        LEADS + "/bulk",
        content=b"source,company\nweb_form,A\x00B\nweb_form,Fine CSV\n",
        headers={"Content-Type": "text/csv"},
        as_=WRITER,
    )
    assert [r["outcome"] for r in nul.json()["results"]] == ["error", "created"], nul.text
    assert "U+0000" in nul.json()["results"][0]["error"]
    for bad in (b"source,company\nweb_form,A\rB\n", b"\xff\xfe", b""):
        refused = await svc.post(
            LEADS + "/bulk", content=bad, headers={"Content-Type": "text/csv"}, as_=WRITER
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body"]
    assert await count_leads(svc) == 3


async def test_a_call_of_more_than_10000_rows_is_refused_whole(opportunities):
    svc = opportunities
    rows = [{"source": "web_form", "company": "x"}] * 10_001
    resp = await svc.bulk(rows)
    assert resp.status_code == 413
    assert resp.json()["max_rows"] == 10_000
    assert await count_leads(svc) == 0


async def test_bad_input_is_a_422_problem_that_writes_nothing(opportunities):
    svc = opportunities
    good = {"source": "web_form", "company": "Fine Co", "evaluation": svc.HOT}
    bad_bodies = [
        {**good, "company": "Nul\x00Co"},
        {**good, "attributes": {"x": 10**30}},
        {**good, "attributes": {"deep": {"a": {"b": {"c": {"d": {"e": {}}}}}}}},
        {**good, "received_at": "yesterday"},
        {**good, "received_at": "1899-01-01T00:00:00Z"},
        {**good, "source": "carrier_pigeon"},
        {**good, "evaluation": {"need_urgency": "max"}},
        {**good, "evaluation": {"x" * 100: "high"}},
        {"source": "web_form"},
        {**good, "external_id": ""},
    ]
    for body in bad_bodies:
        resp = await svc.post(LEADS, json=body, as_=WRITER)
        assert resp.status_code == 422, (body, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        assert problem["status"] == 422 and problem["errors"], problem
    not_finite = await svc.post(
        LEADS,
        content=b'{"source": "web_form", "company": "A", "attributes": {"x": NaN}}',
        headers={"Content-Type": "application/json"},
        as_=WRITER,
    )
    assert not_finite.status_code == 422
    for raw in (b"{not json", b'{"rows": 5}', b"[]"):
        resp = await svc.post(
            LEADS + "/bulk", content=raw, headers={"Content-Type": "application/json"}, as_=WRITER
        )
        assert resp.status_code == 422, resp.text
    xml = await svc.post(
        LEADS + "/bulk", content=b"<rows/>", headers={"Content-Type": "text/xml"}, as_=WRITER
    )
    assert xml.status_code == 422
    assert await count_leads(svc) == 0
    assert await svc.events() == []


async def test_intake_needs_leads_write(opportunities, org):
    svc = opportunities
    body = {"source": "web_form", "company": "Keyed"}
    refused = await svc.post(LEADS, json=body, as_=key("leads:read"))
    assert refused.status_code == 403 and "leads:write" in refused.json()["detail"]
    assert (await svc.bulk([body], as_=key("customers:write"))).status_code == 403
    assert (await svc.post(LEADS, json=body)).status_code == 401
    # Users push leads too (a rep typing in a lead from a phone call).
    assert (await svc.post(LEADS, json=body, as_=org.rep_a)).status_code == 201


async def test_a_lead_is_linked_to_the_customer_it_belongs_to(opportunities):
    svc = opportunities
    by_phone = await svc.customer(phone="+86 138-0013-8000")
    by_mail = await svc.customer(email="Buyer@Summit.example")
    by_name = await svc.customer(name="ACME Co., Ltd.", region="EAST")
    gone = await svc.customer(phone="13900000000", status="merged")

    cases = [
        ({"phone": "13800138000"}, by_phone["id"]),
        ({"email": "buyer@summit.example"}, by_mail["id"]),
        ({"company": "Acme", "region": "east"}, by_name["id"]),
        ({"company": "Acme", "region": "north"}, None),
        ({"phone": "13900000000"}, None),
    ]
    for fields, customer_id in cases:
        lead = await svc.push(**{"company": f"Other {uuid.uuid4().hex[:6]}", **fields})
        assert lead["customer_id"] == customer_id, (fields, lead["customer_id"])

    # The index follows the feed: a customer's new phone matches from then on.
    await svc.feed_event(
        "customers", "customer.updated", **{**gone, "status": "active", "version": 2}
    )
    lead = await svc.push(company="Again", phone="139-0000-0000")
    assert lead["customer_id"] == gone["id"]


async def test_a_bulk_call_links_each_new_lead_by_what_it_holds_once_the_call_is_read(
    opportunities,
):
    """Each new lead of a bulk call is matched on its own content; one that a later row of the
    same call changes, on its content after that row; a known lead without a customer, on
    its new contact details; a known lead with one keeps it."""
    svc = opportunities
    by_phone = await svc.customer(phone="+86 138-0013-8000")
    by_name = await svc.customer(name="ACME Co., Ltd.", region="EAST")
    unlinked = await svc.push(external_id="k-1", company="Known 1")
    linked = await svc.push(external_id="k-2", company="Known 2", phone="13800138000")
    assert unlinked["customer_id"] is None and linked["customer_id"] == by_phone["id"]
    rows = [
        {"external_id": "k-1", "phone": "138 0013 8000"},
        {"external_id": "k-2", "company": "Acme", "region": "EAST"},
        {"external_id": "m-1", "company": "Nobody 1", "phone": "13800138000"},
        {"external_id": "m-2", "company": "Acme", "region": " east "},
        {"external_id": "m-3", "company": "Nobody 3", "region": "EAST"},
        # Linked by its second row's phone ...
        {"external_id": "m-4", "company": "Nobody 4"},
        {"external_id": "m-4", "phone": "+86 138 0013 8000"},
        # ... and not by its first row's phone, which its second row replaced.
        {"external_id": "m-5", "company": "Nobody 5", "phone": "13800138000"},
        {"external_id": "m-5", "phone": "15500000000"},
        # Its second row's company in its first row's region.
        {"external_id": "m-6", "company": "Nobody 6", "region": "EAST"},
        {"external_id": "m-6", "company": "Acme Ltd"},
    ]
    result = await svc.ok(await svc.bulk([{"source": "web_form", **r} for r in rows]))
    # u(pdated), c(reated), row by row.
    assert "".join(r["outcome"][0] for r in result["results"]) == "uuccccucucu"
    found = {}
    for row, answer in zip(rows, result["results"], strict=True):
        lead = await svc.lead(answer["id"], as_=READER)
        found[row["external_id"]] = lead["customer_id"]
    assert found == {
        "k-1": by_phone["id"],
        "k-2": by_phone["id"],
        "m-1": by_phone["id"],
        "m-2": by_name["id"],
        "m-3": None,
        "m-4": by_phone["id"],
        "m-5": None,
        "m-6": by_name["id"],
    }


async def _push_json(svc: Any, body: bytes) -> dict[str, Any]:
    """A bulk push of a JSON body by the writer key: the answer, which must be a 200."""
    resp = await svc.post(
        LEADS + "/bulk", content=body, headers={"Content-Type": "application/json"}, as_=WRITER
    )
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result
