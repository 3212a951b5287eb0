"""The merged API document: valid OpenAPI 3.1, a generated client that imports, services that
are down left out and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate

from gateway.openapi import merge_components
from gateway.routes import service_for

from .conftest import identity_settings, serve_customers, serve_echo, serve_gateway

OPS = {"/healthz", "/readyz", "/metrics", "/events"}


def generate_client(doc: dict[str, Any], workdir: Path) -> None:
    """openapi-python-client turns the document into a package; a fresh interpreter imports it."""
    spec_path = workdir / "openapi.json"
    spec_path.write_text(json.dumps(doc))
    out = workdir / "client"
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none"]
    done = subprocess.run(
        [*command, "--path", str(spec_path), "--output-path", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unable to" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert (out / "__init__.py").exists(), sorted(p.name for p in out.iterdir())
    probe = (
        "import importlib, pkgutil, client\n"
        "from client import AuthenticatedClient\n"
        "mods = [m.name for m in pkgutil.walk_packages(client.__path__, 'client.')]\n"
        "[importlib.import_module(m) for m in mods]\n"
        "assert any(m.startswith('client.api.') for m in mods), mods\n"
        "print(len(mods))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    imported = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=workdir,
    )
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout.strip()) > 10


async def test_merged_document_is_valid_and_generates_a_client(fresh_db, minter, tmp_path):
    async with (
        serve_customers(fresh_db, minter) as customers,
        serve_echo(fresh_db, minter) as (echo, _),
        serve_gateway(
            identity_settings(fresh_db, minter, upstream_customers=customers, upstream_visits=echo)
        ) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=20) as client,
    ):
        r = await client.get("/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        docs_page = await client.get("/docs")
        assert docs_page.status_code == 200 and "/openapi.json" in docs_page.text

    validate(doc)
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    # The gateway's own, and each reachable service's, at their public paths only.
    assert "/api/v1/auth/token" in paths and "/api/v1/users" in paths
    assert "/api/v1/events/{app}" in paths
    assert "/api/v1/customers/{customer_id}" in paths
    assert any(p.startswith("/api/v1/orders/") for p in paths)
    assert "/api/v1/visits/echo" in paths
    assert not OPS & set(paths)
    for path in paths:
        assert path.startswith("/api/v1/"), path
    info = doc["info"]
    assert sorted(info["x-unavailable-services"]) == ["analytics", "opportunities"]
    assert "analytics" in info["description"] and "opportunities" in info["description"]

    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == (
        "/api/v1/auth/token"
    )
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "description": schemes["APIKeyHeader"]["description"],
        "in": "header",
        "name": "X-API-Key",
    }
    auth: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
    assert paths["/api/v1/customers/{customer_id}"]["get"]["security"] == auth
    assert paths["/api/v1/auth/token"]["post"]["security"] == []

    # Every reference resolves.
    text = json.dumps(doc)
    schemas = doc["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        section, name = ref.removeprefix("#/components/").split("/", 1)
        assert name in doc["components"][section], ref
    assert schemas

    generate_client(doc, tmp_path)


async def test_services_that_are_down_are_left_out_and_named(fresh_db, minter):
    # Every upstream points at a closed port (conftest).
    async with (
        serve_gateway(identity_settings(fresh_db, minter)) as (url, _app),
        httpx.AsyncClient(base_url=url, timeout=20) as client,
    ):
        r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    assert sorted(doc["info"]["x-unavailable-services"]) == [
        "analytics",
        "customers",
        "opportunities",
        "visits",
    ]
    assert all(service_for(p) is None for p in doc["paths"])
    assert "/api/v1/me" in doc["paths"]


def test_colliding_component_names_are_prefixed_and_refs_rewritten():
    merged: dict[str, dict[str, Any]] = {
        "schemas": {
            "Item": {"type": "object", "properties": {"a": {"type": "string"}}},
            "Same": {"type": "string"},
        }
    }
    service_doc = {
        "paths": {
            "/api/v1/x": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Page"}
                                }
                            }
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Item": {"type": "object", "properties": {"b": {"type": "integer"}}},
                "Page": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                "Same": {"type": "string"},
            }
        },
    }
    rest = merge_components(merged, "visits", service_doc)
    schemas = merged["schemas"]
    assert schemas["Item"]["properties"] == {"a": {"type": "string"}}
    assert schemas["visits_Item"]["properties"] == {"b": {"type": "integer"}}
    assert schemas["Page"]["items"] == {"$ref": "#/components/schemas/visits_Item"}
    assert "visits_Same" not in schemas
    response = rest["paths"]["/api/v1/x"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/Page"
    )

    # A schema equal by text but pointing at a renamed one is itself renamed.
    merged2: dict[str, dict[str, Any]] = {
        "schemas": {
            "Item": {"type": "string"},
            "Wrapper": {"$ref": "#/components/schemas/Item"},
        }
    }
    merge_components(
        merged2,
        "customers",
        {
            "components": {
                "schemas": {
                    "Item": {"type": "integer"},
                    "Wrapper": {"$ref": "#/components/schemas/Item"},
                }
            }
        },
    )
    assert merged2["schemas"]["customers_Wrapper"] == {
        "$ref": "#/components/schemas/customers_Item"
    }
    assert merged2["schemas"]["Wrapper"] == {"$ref": "#/components/schemas/Item"}
