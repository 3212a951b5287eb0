"""The customers service's public API, called on the caller's behalf (`servicekit.calls`):
the customers service applies its own rules (access, codes, duplicate check, owner rules) to
the caller as if they had called it themselves. This app never writes customers itself."""

from __future__ import annotations

import uuid
from typing import Any

from opportunities.leads.exceptions import DuplicateCustomers, UpstreamFailed
from servicekit.calls import Answer, CallerCalls
from servicekit.errors import Conflict, DomainError, Forbidden, ValidationFailed

CUSTOMERS = "/api/v1/customers"


def _problem(answer: Answer) -> dict[str, Any]:
    doc = answer.json()
    return doc if isinstance(doc, dict) else {}


def relay(answer: Answer, field: str) -> DomainError:
    """The customers service's refusal as this app's own problem: 403, 409 and 422 keep their
    status and detail (422's field paths under `field`); anything else is a 502."""
    doc = _problem(answer)
    said = doc.get("detail") or doc.get("title")
    detail = f"the customers service answered {answer.status}" + (f": {said}" if said else "")
    if answer.status == 422:
        errors = [
            {**e, "loc": [field, *[p for p in e.get("loc", []) if p != "body"]]}
            for e in doc.get("errors") or []
            if isinstance(e, dict)
        ]
        return ValidationFailed(detail, errors=errors or [{"loc": [field], "msg": detail}])
    if answer.status in (401, 403):
        return Forbidden(detail)
    if answer.status == 409:
        return Conflict(detail)
    return UpstreamFailed(detail)


async def require_visible(calls: CallerCalls, customer_id: uuid.UUID, field: str) -> None:
    """422 unless the caller may see the customer."""
    answer = await calls.get(f"{CUSTOMERS}/{customer_id}")
    if answer.ok:
        return
    if answer.status == 404:
        raise ValidationFailed.field(field, "no customer you may see")
    raise relay(answer, field)


async def create(
    calls: CallerCalls, body: dict[str, Any], *, confirm_duplicates: bool
) -> tuple[uuid.UUID, bool]:
    """Create the customer (id, True), or find the one an earlier attempt of the same
    conversion created (id, False: its `external_ref` is taken). Likely duplicates are a 409
    with the candidates."""
    answer = await calls.post(
        CUSTOMERS,
        json=body,
        params={"confirm_duplicates": "true" if confirm_duplicates else "false"},
    )
    if answer.status == 201:
        return uuid.UUID(answer.json()["id"]), True
    doc = _problem(answer)
    if answer.status == 409 and doc.get("type") == "/problems/duplicates-found":
        raise DuplicateCustomers(list(doc.get("candidates") or []))
    if answer.status == 409 and doc.get("existing_id"):
        # This lead's customer exists already: an earlier attempt created it, and the
        # conversion failed after (its transaction rolled back; the customer stayed).
        return uuid.UUID(str(doc["existing_id"])), False
    raise relay(answer, "customer")
