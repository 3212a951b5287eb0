"""Safe code patterns (the default of DOMAIN.md; ambiguous patterns refused; a collision that
still happens is a 409), the regions catalogue, and the list's industry filter."""

from __future__ import annotations

import pytest

API = "/api/v1/customers"
SETTINGS = f"{API}/settings"


async def test_the_default_code_carries_region_and_the_level_at_creation(customers, org):
    a = await customers.create(org.rep_a, level="A")
    assert a["code"] == "EAST-A-000001"
    # The level in a code is the level at creation: raising it never changes the code.
    raised = await customers.patch(
        f"{API}/{a['id']}", json={"level": "B"}, headers={"If-Match": '"1"'}, as_=org.manager_north
    )
    assert raised.json()["code"] == "EAST-A-000001"
    doc = (await customers.get(SETTINGS, as_=org.rep_a)).json()
    assert doc["code_pattern"] == "{region}-{level}-{seq:06}"


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("{region}{seq}", "ambiguous"),
        ("{region}{seq:06}", "ambiguous"),
        ("{seq:04}{year}", "ambiguous"),
        ("{region}-{level}", "has no {seq}"),
        ("CUST-{region}", "has no {seq}"),
        ("{region}-{seq:x}", "plain digits"),
        ("{region}-{seq}-{region}", "more than once"),
        ("{region}7{seq}", "ambiguous"),
    ],
)
async def test_patterns_whose_codes_could_collide_are_refused(customers, org, pattern, why):
    resp = await customers.patch(SETTINGS, json={"code_pattern": pattern}, as_=org.admin)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert error["loc"] == ["body", "code_pattern"] and why in error["msg"]
    assert (await customers.get(SETTINGS, as_=org.admin)).headers["etag"] == '"0"'


@pytest.mark.parametrize(
    "pattern", ["{region}-{seq:06}", "{level}{seq}", "C{seq:05}", "{year}/{region}.{seq}"]
)
async def test_patterns_with_a_separated_number_are_accepted(customers, org, pattern):
    resp = await customers.patch(SETTINGS, json={"code_pattern": pattern}, as_=org.admin)
    assert resp.status_code == 200, resp.text


async def test_a_code_taken_under_an_earlier_pattern_is_a_409_not_a_500(customers, org):
    await customers.patch(SETTINGS, json={"code_pattern": "{region}-{seq}"}, as_=org.admin)
    first = await customers.create(org.rep_a)
    assert first["code"] == "EAST-1"
    # The same shape with a padded number: its counter starts again and meets EAST-1 at 1.
    await customers.patch(SETTINGS, json={"code_pattern": "{region}-{seq:01}"}, as_=org.admin)
    resp = await customers.post(
        API,
        json={"name": "Next", "region": "EAST"},
        params={"confirm_duplicates": "true"},
        as_=org.rep_a,
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["type"] == "/problems/code-taken"
    listed = await customers.get(API, as_=org.rep_a)
    assert [c["code"] for c in listed.json()["items"]] == ["EAST-1"]


async def test_a_regions_catalogue_refuses_unknown_regions(customers, org):
    outside = await customers.create(org.rep_a, region="MARS")
    saved = await customers.patch(SETTINGS, json={"regions": ["east", "West "]}, as_=org.admin)
    assert saved.status_code == 200 and saved.json()["regions"] == ["EAST", "WEST"]
    refused = await customers.post(
        API,
        json={"name": "Far", "region": "north"},
        params={"confirm_duplicates": "true"},
        as_=org.rep_a,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["region"]
    assert "EAST, WEST" in refused.json()["errors"][0]["msg"]
    assert (await customers.create(org.rep_a, region="west"))["region"] == "WEST"
    moved = await customers.patch(
        f"{API}/{outside['id']}",
        json={"region": "north"},
        headers={"If-Match": '"1"'},
        as_=org.rep_a,
    )
    assert moved.status_code == 422
    # A customer already outside the catalogue keeps its region when other fields change.
    kept = await customers.patch(
        f"{API}/{outside['id']}",
        json={"address": "Crater 1"},
        headers={"If-Match": '"1"'},
        as_=org.rep_a,
    )
    assert kept.status_code == 200, kept.text
    imported = await customers.post(
        f"{API}/import",
        json={"rows": [{"name": "I1", "region": "east"}, {"name": "I2", "region": "south"}]},
        as_=org.admin,
    )
    body = imported.json()
    assert body["created"] == 1 and "region" in body["results"][1]["error"]


async def test_the_list_filters_by_industry(customers, org):
    printing = await customers.create(org.rep_a, industry="Printing")
    await customers.create(org.rep_a, industry="Retail")
    listed = await customers.get(API, params={"industry": "Printing"}, as_=org.rep_a)
    assert [c["id"] for c in listed.json()["items"]] == [printing["id"]]
