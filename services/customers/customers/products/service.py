"""The catalogue's rules: admins (and keys with `products:write`) write, everyone reads (keys
with a products or orders scope); a sku names one product for ever; order lines are checked
against the catalogue and carry the product's name and category as they were."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events as archive_events
from customers.products import events, repository
from customers.products.exceptions import ProductNotFound, SkuTaken
from customers.products.models import Product
from customers.products.schemas import ProductCreate, ProductListQuery, ProductUpdate
from servicekit.auth import Principal
from servicekit.csvfiles import read_rows
from servicekit.db import utcnow
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import new_id, ordered_uuids
from servicekit.imports import import_report
from servicekit.inputs import row_refusal
from servicekit.pagination import PageParams

# As many rows as a customers import takes in one call.
MAX_ROWS = 10_000

READ_SCOPES = ("products:read", "products:write", "orders:read", "orders:write")
WRITE_SCOPE = "products:write"


def require_read(principal: Principal) -> None:
    if principal.kind == "key" and not any(principal.has_scope(s) for s in READ_SCOPES):
        raise Forbidden(f"this action needs one of the scopes {', '.join(READ_SCOPES)}")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)
    elif not principal.is_admin:
        raise Forbidden("only admins change the product catalogue")


async def list_products(
    session: AsyncSession, principal: Principal, query: ProductListQuery
) -> tuple[list[Any], str | None]:
    require_read(principal)
    return await repository.page(
        session,
        PageParams(query.limit, query.cursor),
        active=query.active,
        category=query.category,
    )


async def get_product(
    session: AsyncSession, principal: Principal, product_id: uuid.UUID, *, for_update: bool = False
) -> Product:
    require_read(principal)
    product = await repository.product_by_id(session, product_id, for_update=for_update)
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def create_product(
    session: AsyncSession, principal: Principal, body: ProductCreate
) -> Product:
    require_write(principal)
    now = utcnow()
    values = {
        "id": new_id(),
        **body.model_dump(),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "created_by": principal.sub,
        "updated_by": principal.sub,
    }
    if not await repository.insert_one(session, values):
        existing = (await repository.by_skus(session, [body.sku])).get(body.sku)
        raise SkuTaken(body.sku, None if existing is None else existing.id)
    await archive_events.emit(
        session, events.PRODUCT_CREATED, values["id"], events.product_facts(values)
    )
    product = await repository.product_by_id(session, values["id"])
    assert product is not None
    return product


async def update_product(
    session: AsyncSession, principal: Principal, product: Product, body: ProductUpdate
) -> Product:
    """Apply a PATCH (the product loaded for update and If-Match checked by the caller)."""
    require_write(principal)
    changes = {
        k: (getattr(product, k), v)
        for k, v in body.model_dump(exclude_unset=True).items()
        if getattr(product, k) != v
    }
    if not changes:
        return product
    for name, (_, new) in changes.items():
        setattr(product, name, new)
    product.version += 1
    product.updated_at = utcnow()
    product.updated_by = principal.sub
    await session.flush()
    await archive_events.emit(
        session, events.PRODUCT_UPDATED, product.id, events.updated(product, changes, principal.sub)
    )
    return product


# --- import: up to 10,000 rows, upsert by sku ---------------------------------------------


def _outcome(row: int, outcome: str, id: Any = None, error: str | None = None) -> dict[str, Any]:
    return {"row": row, "outcome": outcome, "id": id, "error": error}


async def import_products(
    session: AsyncSession, principal: Principal, body: bytes, content_type: str | None
) -> dict[str, Any]:
    """Each row (JSON `{"rows": [...]}` or CSV) is a `ProductCreate`; a known sku is updated
    (the fields the row gives), a new one created. A bad row is an `error` outcome and never
    blocks the others. Who may import is decided before the body is read."""
    require_write(principal)
    raw = read_rows(body, content_type, max_rows=MAX_ROWS)
    results: list[dict[str, Any]] = []
    valid: list[tuple[int, ProductCreate]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        if refusal := row_refusal(item):
            results.append(_outcome(i, "error", error=refusal))
            continue
        try:
            row = ProductCreate.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ())) or "row"
            results.append(_outcome(i, "error", error=f"{loc}: {err.get('msg')}"))
            continue
        if row.sku in seen:
            results.append(_outcome(i, "error", error=f"sku: repeats row {seen[row.sku]}"))
            continue
        seen[row.sku] = i
        valid.append((i, row))
    existing = await repository.by_skus(session, [r.sku for _, r in valid], lock=True)
    now = utcnow()
    ids = iter(ordered_uuids(len(valid)))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    announced: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    for i, row in valid:
        match = existing.get(row.sku)
        if match is None:
            values = {
                "id": next(ids),
                **row.model_dump(),
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": principal.sub,
                "updated_by": principal.sub,
            }
            inserts.append(values)
            announced.append((events.PRODUCT_CREATED, values["id"], events.product_facts(values)))
            results.append(_outcome(i, "created", values["id"]))
            continue
        given = row.model_dump(include=row.model_fields_set - {"sku"})
        changes = {k: (getattr(match, k), v) for k, v in given.items() if getattr(match, k) != v}
        if not changes:
            results.append(_outcome(i, "unchanged", match.id))
            continue
        after = {**match._mapping, **{k: new for k, (_, new) in changes.items()}}
        after["version"] = match.version + 1
        updates.append(
            {"_id": match.id, **{k: after[k] for k in ("name", "category", "unit", "active")}}
        )
        announced.append(
            (events.PRODUCT_UPDATED, match.id, events.updated(after, changes, principal.sub))
        )
        results.append(_outcome(i, "updated", match.id))
    await repository.insert_many(session, inserts)
    if updates:
        await repository.update_many(session, updates, at=now, by=principal.sub)
    await archive_events.emit_many(session, announced)
    results.sort(key=lambda r: r["row"])
    return import_report(results)


# --- order lines ----------------------------------------------------------------------------


async def resolve_lines(
    session: AsyncSession, lines: Sequence[Any], *, free_text: bool, path: str = "lines"
) -> list[dict[str, Any]]:
    """The lines as stored on an order: each names an active product by sku and carries its
    name, category and unit as they are now. With free-text lines allowed (the settings), a
    line may name a product the catalogue does not know (by sku or by name alone). 422 naming
    every line that does not pass."""
    products = await repository.by_skus(session, {line.sku for line in lines if line.sku})
    out: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        product = products.get(line.sku) if line.sku else None
        if product is not None and product.active:
            out.append(
                {
                    "sku": product.sku,
                    "product": product.name,
                    "category": product.category,
                    "unit": product.unit,
                    "quantity": str(line.quantity),
                    "unit_price": str(line.unit_price),
                }
            )
            continue
        if free_text:
            out.append(
                {
                    "sku": line.sku,
                    "product": line.product or line.sku,
                    "category": None,
                    "unit": None,
                    "quantity": str(line.quantity),
                    "unit_price": str(line.unit_price),
                }
            )
            continue
        if not line.sku:
            msg = "required: lines name catalogue products (free-text lines are off)"
        elif product is None:
            msg = f"unknown sku {line.sku!r}"
        else:
            msg = f"the product {line.sku!r} is inactive"
        errors.append({"loc": [path, i, "sku"], "msg": msg})
    if errors:
        raise ValidationFailed(
            f"{len(errors)} order line(s) do not name an active product of the catalogue",
            errors=errors,
        )
    return out
