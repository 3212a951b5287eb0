"""The API document as a contract: what the kit does for a route, the route's document says.

FastAPI documents what a route declares. What the kit itself answers for every route is added
here, from the route's own declarations, so that no app can leave it out:

- every error is one `Problem` component (RFC 9457, `application/problem+json`); FastAPI's
  `HTTPValidationError` is replaced by it, since the kit answers 422 as a problem whose
  `errors` name the fields;
- the statuses the kit answers: 401 and 403 when the route needs a caller, 404 when its path
  names a record, 422 when it takes input, 409 for a POST (its `Idempotency-Key` still being
  processed), 412 when it reads `If-Match` (and 428 when it requires it), 503 while the
  database is away;
- the headers in (`Idempotency-Key` on POST, `If-Match` where read, `X-Request-ID`) and out
  (`X-Request-ID` on every answer, `Idempotent-Replayed` on a POST's success, `ETag` where
  `If-Match` is read, `Retry-After` on 503, `WWW-Authenticate` on 401);
- no null where none can be sent (parameters) and no `default: null` on a field that refuses
  null.

What only the route knows it declares with `responses=`: `with_headers("ETag")` on a read
that answers one, a 409 with the description of its conflict. Error statuses declared
without content become problems. The gateway adds its own answers (429, 413, 502, 504, the
rate-limit headers) when it merges the documents (`gateway/openapi.py`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from servicekit.auth import current_principal
from servicekit.errors import PROBLEM_CONTENT_TYPE
from servicekit.etag import IF_MATCH_DEPENDENCIES, if_match_required
from servicekit.routing import KitRoute

REF = "#/components/schemas/"
PROBLEM = "Problem"
FIELD_ERROR = "FieldError"
PROBLEM_REF = {"$ref": REF + PROBLEM}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM,
    "type": "object",
    "description": "Every error answer of the API (RFC 9457). `type` is stable and names the "
    "kind of problem; a 422 lists the offending fields in `errors`. Some problems add members "
    "of their own (a 412's `current_version`, a 409's `duplicates`).",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "description": "The kind of problem, a relative URI such as /problems/not-found",
        },
        "title": {"type": "string", "description": "The kind of problem, for people"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What went wrong with this request"},
        "instance": {"type": "string", "description": "The path of the request"},
        "errors": {"type": "array", "items": {"$ref": REF + FIELD_ERROR}},
    },
    "additionalProperties": True,
    "examples": [
        {
            "type": "/problems/validation-error",
            "title": "The request is not valid",
            "status": 422,
            "detail": "body.name: String should have at least 1 character",
            "errors": [
                {
                    "loc": ["body", "name"],
                    "msg": "String should have at least 1 character",
                    "type": "string_too_short",
                }
            ],
            "instance": "/api/v1/customers",
        }
    ],
}
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": FIELD_ERROR,
    "type": "object",
    "description": "One offending field of a 422.",
    "required": ["loc", "msg"],
    "properties": {
        "loc": {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": "Where: body, query, path or header, then the field's path, a "
            "list's position as an integer (a business rule's error names the field alone)",
        },
        "msg": {"type": "string"},
        "type": {"type": "string", "description": "The kind of error, e.g. missing"},
    },
    "additionalProperties": True,
}

_STRING = {"type": "string"}
_SECONDS = {"type": "integer", "minimum": 0}
# Every header the API sends or reads, described once.
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": "The record's version; send it back in If-Match", "schema": _STRING},
    "Location": {"description": "Where the record just created can be read", "schema": _STRING},
    "X-Request-ID": {
        "description": "The request's id (the one sent, when it is 1-128 of A-Z a-z 0-9 . _ "
        ": -), also in every log line about it",
        "schema": _STRING,
    },
    "Idempotent-Replayed": {
        "description": "`true`: the stored answer to an earlier request with the same "
        "Idempotency-Key, replayed; nothing was done again",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": _SECONDS},
    "WWW-Authenticate": {"description": "How to authenticate", "schema": _STRING},
    "RateLimit": {
        "description": 'What is left of the caller\'s quota: `"<policy>";r=<left>;t=<seconds '
        "until the window resets>` (draft-ietf-httpapi-ratelimit-headers)",
        "schema": _STRING,
    },
    "RateLimit-Policy": {
        "description": 'The caller\'s quota: `"<policy>";q=<requests>;w=<window seconds>`',
        "schema": _STRING,
    },
    "Content-Disposition": {"description": "The file name to save the body as", "schema": _STRING},
    "Cache-Control": {"description": "`no-store`: never cache this answer", "schema": _STRING},
}

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key with the same request answers the first "
    "answer again (with `Idempotent-Replayed: true`) without doing anything twice; the same key "
    "with another request is a 422. Keys are the caller's own and kept for a day.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "The caller's id for this request, answered back and logged; one that is "
    "not 1-128 of A-Z a-z 0-9 . _ : - is replaced by a new one.",
    "schema": _STRING,
}

# What each status means wherever the kit or the gateway adds it.
STATUS_DESCRIPTIONS = {
    400: "The request is malformed (its framing or its body cannot be read)",
    401: "No valid credentials",
    403: "The caller's role or the key's scopes do not allow this",
    404: "No such record, or none the caller may see",
    409: "In conflict with the current state (or the Idempotency-Key is still being processed)",
    412: "If-Match names another version: read the record again and retry",
    413: "The request body is too large",
    422: "The request is not valid; `errors` names the offending fields",
    428: "If-Match is required: send the ETag last read",
    429: "Rate limit reached; retry after Retry-After seconds",
    502: "The service behind the gateway failed to answer",
    503: "Unavailable for a moment (the database or a service is away); retry after Retry-After "
    "seconds",
    504: "The service behind the gateway did not answer in time; it may still have done the "
    "request: retry with the same Idempotency-Key",
}
_ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}
_ALWAYS_SENT = frozenset({"X-Request-ID"})


def header(name: str, *, required: bool = True) -> dict[str, Any]:
    """The response header `name` as an OpenAPI header object."""
    return {**HEADERS[name], "required": required}


def with_headers(*names: str) -> dict[str, Any]:
    """A route's `responses=` entry for an answer that always carries these headers:
    `responses={200: with_headers("ETag")}`."""
    return {"headers": {name: header(name) for name in names}}


def problem_content() -> dict[str, Any]:
    return {PROBLEM_CONTENT_TYPE: {"schema": dict(PROBLEM_REF)}}


def add_status(op: dict[str, Any], status: int, description: str | None = None) -> None:
    """Document `status` on the operation (an error as a problem) unless it already is."""
    responses = op.setdefault("responses", {})
    entry = responses.setdefault(str(status), {})
    if entry.get("description") in (None, "Validation Error"):  # FastAPI's own 422
        entry["description"] = description or STATUS_DESCRIPTIONS.get(status, "Error")
    if status >= 400:
        _as_problem(entry)
        for name in _ERROR_HEADERS.get(status, ()):
            entry.setdefault("headers", {}).setdefault(name, header(name))


def add_response_header(
    op: dict[str, Any], name: str, *, required: bool, statuses: range = range(100, 600)
) -> None:
    """Declare the header `name` on the operation's answers whose status is in `statuses`."""
    for status, entry in op.get("responses", {}).items():
        if status.isdigit() and int(status) in statuses:
            entry.setdefault("headers", {}).setdefault(name, header(name, required=required))


def add_parameter(op: dict[str, Any], parameter: dict[str, Any]) -> None:
    params = op.setdefault("parameters", [])
    key = (parameter["in"], parameter["name"].lower())
    if all((p.get("in"), str(p.get("name", "")).lower()) != key for p in params):
        params.append(copy.deepcopy(parameter))


def sort_responses(op: dict[str, Any]) -> None:
    op["responses"] = dict(sorted(op.get("responses", {}).items()))


def _as_problem(entry: dict[str, Any]) -> None:
    """An error answer's content is a problem document: the shared component unless the route
    declared a schema of its own, always as application/problem+json."""
    content = entry.get("content") or {}
    schemas = [c.get("schema") for c in content.values() if isinstance(c, dict) and c.get("schema")]
    schema = schemas[0] if schemas else None
    if schema is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
        schema = dict(PROBLEM_REF)
    entry["content"] = {PROBLEM_CONTENT_TYPE: {"schema": schema}}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _dependencies(dep)


def _needs_caller(route: RouteContext, op: dict[str, Any]) -> bool:
    if getattr(route.original_route, "requires_principal", False) or op.get("security"):
        return True
    return any(d.call is current_principal for d in _dependencies(route.dependant))


def _if_match(route: RouteContext) -> bool | None:
    """None when the route does not read If-Match, else whether it requires it."""
    for dep in _dependencies(route.dependant):
        if dep.call in IF_MATCH_DEPENDENCIES:
            return if_match_required(dep.call)
    return None


def complete_operation(route: RouteContext, method: str, op: dict[str, Any]) -> None:
    """Add to one operation what the kit does for its route (see the module's docstring)."""
    params = op.get("parameters", [])
    for param in params:
        _drop_null(param.get("schema"))
    takes_input = bool(params) or "requestBody" in op
    if _needs_caller(route, op):
        add_status(op, 401)
        add_status(op, 403)
    if any(p.get("in") == "path" for p in params):
        add_status(op, 404)
    if_match = _if_match(route)
    if if_match is not None:
        for param in params:
            if param.get("in") == "header" and param.get("name") == "If-Match":
                param["required"] = if_match
        add_status(op, 412)
        if if_match:
            add_status(op, 428)
        add_response_header(op, "ETag", required=True, statuses=range(200, 300))
    if method == "POST" and isinstance(route.original_route, KitRoute):
        add_parameter(op, IDEMPOTENCY_KEY_PARAMETER)
        takes_input = True
        add_status(op, 409)
        add_response_header(op, "Idempotent-Replayed", required=False, statuses=range(200, 300))
    if takes_input:
        add_status(op, 422)
    add_status(op, 503)
    add_parameter(op, REQUEST_ID_PARAMETER)
    for status, entry in op["responses"].items():
        if status.isdigit() and int(status) >= 400:
            _as_problem(entry)
    add_response_header(op, "X-Request-ID", required=True)
    sort_responses(op)


def _drop_null(schema: Any) -> None:
    """A parameter cannot be sent as null: `anyOf [X, null]` becomes X."""
    if not isinstance(schema, dict):
        return
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) != len(options):
            del schema["anyOf"]
            if len(kept) == 1:
                schema.update(kept[0])
            else:
                schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]


def _accepts_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or (
        isinstance(schema.get("type"), list) and "null" in schema["type"]
    ):
        return True
    return any(_accepts_null(o) for o in schema.get("anyOf", []) + schema.get("oneOf", []))


def _no_null_defaults(schemas: dict[str, Any]) -> None:
    """`default: null` on a property that refuses null (a field that may be left out, never
    sent as null) says nothing true: leaving it out is what it means."""
    for schema in schemas.values():
        for prop in (schema.get("properties") or {}).values():
            if (
                isinstance(prop, dict)
                and "default" in prop
                and prop["default"] is None
                and not _accepts_null(prop)
            ):
                del prop["default"]


def _referenced(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF):
                found.add(ref[len(REF) :])
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def contract_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with what the kit does for each route (cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        item = doc["paths"].get(route.path_format, {})
        for method in sorted(route.methods or ()):
            op = item.get(method.lower())
            if op is not None:
                complete_operation(route, method, op)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM] = copy.deepcopy(PROBLEM_SCHEMA)
    schemas[FIELD_ERROR] = copy.deepcopy(FIELD_ERROR_SCHEMA)
    _no_null_defaults(schemas)
    used = _referenced({k: v for k, v in doc.items() if k != "components"})
    # What references reach, transitively: FastAPI's own validation shapes fall away.
    pending = list(used)
    while pending:
        for name in _referenced(schemas.get(pending.pop(), {})) - used:
            used.add(name)
            pending.append(name)
    for name in ("HTTPValidationError", "ValidationError"):
        if name not in used:
            schemas.pop(name, None)
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    app.openapi_schema = doc
    return doc


def install_contract(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json`) the contract document."""

    def openapi() -> dict[str, Any]:
        return contract_document(app)

    app.openapi = openapi  # type: ignore[method-assign]
