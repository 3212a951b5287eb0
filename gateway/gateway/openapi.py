"""The merged API document at `GET /openapi.json` (and `/docs` on top of it).

The gateway's own paths plus each service's, fetched from the service at request time (short
timeout, cached briefly). Every document is already the kit's contract (`servicekit.openapi`:
problems, the kit's statuses and headers); the merge adds what the edge answers in front of
every operation (`complete_at_the_edge`: 400, 401/403, 413, 429 and the rate-limit headers,
502/504 for what is forwarded). Services serve their routers at the public paths (see routes.py), so
their paths need no rewriting; what is not public (ops endpoints, a service's own `/events`,
whose public form is the gateway's `/api/v1/events/{app}`) is left out. Component names that
collide with different content are prefixed with the service's name, and that service's
`$ref`s rewritten. A service that cannot be fetched is left out and named in
`info.x-unavailable-services` instead of failing the whole document.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from gateway.config import Settings
from gateway.routes import EVENTS_PREFIX, SERVICES, service_for, upstreams
from servicekit.openapi import (
    IDEMPOTENCY_KEY_PARAMETER,
    add_response_header,
    add_status,
    sort_responses,
)

log = logging.getLogger("gateway.openapi")

OPENAPI_PATH = "/openapi.json"
TOKEN_URL = "/api/v1/auth/token"
BEARER = "OAuth2PasswordBearer"
API_KEY = "APIKeyHeader"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "oauth2",
        "description": "Users: the access token of `POST /api/v1/auth/token`, as a bearer token.",
        "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    },
    API_KEY: {
        "type": "apiKey",
        "description": "Integrations: an API key, created by an admin.",
        "in": "header",
        "name": "X-API-Key",
    },
}
AUTHENTICATED: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY: []}]
# Gateway paths that are not part of the public API.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/events"})
# Calls made before one has credentials.
ANONYMOUS_OPERATIONS = frozenset({("post", TOKEN_URL), ("post", "/api/v1/auth/refresh")})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_REF_PREFIX = "#/components/"


def _rewrite_refs(node: Any, renames: dict[str, dict[str, str]]) -> Any:
    """A copy of `node` whose `#/components/<section>/<name>` refs follow `renames`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                section, _, name = value[len(_REF_PREFIX) :].partition("/")
                new = renames.get(section, {}).get(name)
                out[key] = f"{_REF_PREFIX}{section}/{new}" if new is not None else value
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _prefixed(service: str, name: str) -> str:
    return f"{service}_{name}"


def merge_components(
    merged: dict[str, dict[str, Any]], service: str, doc: dict[str, Any]
) -> dict[str, Any]:
    """Add `doc`'s components to `merged`; answer `doc` with its refs following any renames.

    A name already taken by different content is prefixed. Renaming one schema changes the
    content of those that refer to it, so the comparison runs again until nothing moves.
    """
    components: dict[str, dict[str, Any]] = doc.get("components") or {}
    renames: dict[str, dict[str, str]] = {}
    while True:
        rewritten = _rewrite_refs(components, renames)
        changed = False
        for section, entries in rewritten.items():
            if section == "securitySchemes" or not isinstance(entries, dict):
                continue
            taken = merged.get(section, {})
            for name, value in entries.items():
                if name in renames.get(section, {}):
                    continue
                if name in taken and taken[name] != value:
                    renames.setdefault(section, {})[name] = _prefixed(service, name)
                    changed = True
        if not changed:
            break
    for section, entries in rewritten.items():
        if section == "securitySchemes" or not isinstance(entries, dict):
            continue
        target = merged.setdefault(section, {})
        section_renames = renames.get(section, {})
        for name, value in entries.items():
            target[str(section_renames.get(name, name))] = value
    result = _rewrite_refs({k: v for k, v in doc.items() if k != "components"}, renames)
    assert isinstance(result, dict)
    return result


def complete_at_the_edge(paths: dict[str, Any]) -> None:
    """Add to every operation what the edge answers before (or instead of) its app."""
    for path, item in paths.items():
        forwarded = service_for(path) is not None or path.startswith(EVENTS_PREFIX + "/")
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            if op.get("security"):
                add_status(op, 401)
                add_status(op, 403)
            else:
                # Anonymous calls have no one to key stored answers by: the key is ignored.
                op["parameters"] = [
                    p
                    for p in op.get("parameters", [])
                    if p.get("name") != IDEMPOTENCY_KEY_PARAMETER["name"]
                ]
            add_status(op, 400)
            if "requestBody" in op:
                add_status(op, 413)
            add_status(op, 429)
            if forwarded:
                add_status(op, 502)
                add_status(op, 504)
            for name in ("RateLimit", "RateLimit-Policy"):
                add_response_header(op, name, required=False)
            sort_responses(op)


def unique_titles(schemas: dict[str, Any]) -> None:
    """Give schemas that share a `title` their component name as title instead.

    Generators name models after titles; FastAPI's `X-Input` / `X-Output` pairs (and schemas
    renamed by the merge) keep the same title, which openapi-python-client refuses as duplicate
    models.
    """
    by_title: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        if isinstance(schema, dict) and isinstance(schema.get("title"), str):
            by_title.setdefault(schema["title"], []).append(name)
    for names in by_title.values():
        if len(names) > 1:
            for name in names:
                schemas[name]["title"] = name


class MergedOpenApi:
    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.upstreams = upstreams(settings)
        self.cache_seconds = settings.openapi_cache_seconds
        self.timeout = aiohttp.ClientTimeout(total=settings.openapi_fetch_timeout_seconds)
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def _fetch(self, session: aiohttp.ClientSession, service: str) -> dict[str, Any] | None:
        hit = self._cache.get(service)
        now = time.monotonic()
        if hit is not None:
            # A failure is retried sooner than a document is refreshed.
            ttl = self.cache_seconds if hit[1] is not None else min(self.cache_seconds, 2.0)
            if now - hit[0] < ttl:
                return hit[1]
        doc: dict[str, Any] | None = None
        try:
            async with session.get(
                self.upstreams[service] + OPENAPI_PATH, timeout=self.timeout
            ) as resp:
                if resp.status == 200:
                    loaded = orjson.loads(await resp.read())
                    doc = loaded if isinstance(loaded, dict) else None
                else:
                    log.warning("%s answered %s for its API document", service, resp.status)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("%s API document unavailable: %s", service, exc)
        self._cache[service] = (now, doc)
        return doc

    def forget(self, service: str) -> None:
        """Fetch `service`'s document again for the next merge (the gateway could not reach
        it: the cached one may describe a service that is gone)."""
        self._cache.pop(service, None)

    def _own(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.app.openapi())
        doc["paths"] = {p: v for p, v in doc.get("paths", {}).items() if p not in OPS_PATHS}
        return doc

    async def document(self) -> dict[str, Any]:
        session: aiohttp.ClientSession = self.app.state.http_session
        fetched = await asyncio.gather(*(self._fetch(session, s) for s in SERVICES))
        doc = self._own()
        components: dict[str, dict[str, Any]] = doc.pop("components", None) or {}
        paths: dict[str, Any] = doc["paths"]
        for path, item in paths.items():
            for method, op in item.items():
                if method in HTTP_METHODS and "security" not in op:
                    op["security"] = [] if (method, path) in ANONYMOUS_OPERATIONS else AUTHENTICATED
        tags = {t["name"]: t for t in doc.get("tags", [])}
        operation_ids = {
            op.get("operationId")
            for item in paths.values()
            for method, op in item.items()
            if method in HTTP_METHODS
        }
        unavailable = []
        for service, service_doc in zip(SERVICES, fetched, strict=True):
            if service_doc is None:
                unavailable.append(service)
                continue
            service_doc = merge_components(components, service, service_doc)
            for path, item in (service_doc.get("paths") or {}).items():
                # Only what the route table sends to this service is public.
                if service_for(path) != service:
                    continue
                for method, op in item.items():
                    if method in HTTP_METHODS:
                        op["security"] = AUTHENTICATED
                        op.setdefault("tags", [service])
                        # Generators need them unique across the whole document.
                        if op.get("operationId") in operation_ids:
                            op["operationId"] = f"{service}_{op['operationId']}"
                        operation_ids.add(op.get("operationId"))
                paths[path] = item
            for tag in service_doc.get("tags") or []:
                tags.setdefault(tag["name"], tag)
        complete_at_the_edge(paths)
        unique_titles(components.get("schemas", {}))
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        doc["components"] = components
        doc["security"] = AUTHENTICATED
        if tags:
            doc["tags"] = list(tags.values())
        info = doc.setdefault("info", {})
        info["x-unavailable-services"] = unavailable
        if unavailable:
            note = (
                "Not included because they could not be reached when this document was made: "
                + ", ".join(unavailable)
                + "."
            )
            info["description"] = (info.get("description", "") + "\n\n" + note).strip()
        return doc


def install_merged_openapi(app: FastAPI, settings: Settings) -> None:
    """Replace FastAPI's own `/openapi.json` route (and so what `/docs` shows) by the merge."""
    merger = MergedOpenApi(app, settings)
    app.state.openapi = merger
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url
    ]

    async def openapi_json(request: Request) -> Response:
        doc = await merger.document()
        return Response(orjson.dumps(doc), media_type="application/json")

    app.add_route(OPENAPI_PATH, openapi_json, include_in_schema=False)
