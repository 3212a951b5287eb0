"""Every statement of the catalogue."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.products.models import PRODUCTS, Product
from servicekit.bulk import insert_rows
from servicekit.pagination import PageParams, keyset, make_page

P = PRODUCTS.c
# The order of the catalogue's answers and of its rows in an order line: the product's public
# columns (`ProductRead`'s).
READ_COLUMNS = [P.id, P.sku, P.name, P.category, P.unit, P.active, P.version]


async def product_by_id(
    session: AsyncSession, product_id: uuid.UUID, *, for_update: bool = False
) -> Product | None:
    return await session.get(Product, product_id, with_for_update=for_update)


async def by_skus(
    session: AsyncSession, skus: Collection[str], *, lock: bool = False
) -> dict[str, Any]:
    """The products named by `skus` (sku -> row), locked in sku order with `lock`."""
    if not skus:
        return {}
    stmt = sa.select(PRODUCTS).where(P.sku == sa.any_(sa.cast(sorted(skus), ARRAY(sa.Text))))
    if lock:
        stmt = stmt.order_by(P.sku).with_for_update()
    return {r.sku: r for r in await session.execute(stmt)}


async def page(
    session: AsyncSession,
    params: PageParams,
    *,
    active: bool | None,
    category: str | None,
) -> tuple[list[Any], str | None]:
    stmt = sa.select(PRODUCTS)
    if active is not None:
        stmt = stmt.where(P.active.is_(active))
    if category is not None:
        stmt = stmt.where(P.category == category)
    rows = (await session.execute(keyset(stmt, [P.sku], params))).all()
    return make_page(rows, params, lambda r: [r.sku])


async def insert_one(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the sku is taken (also by a concurrent insert); whether it was."""
    stmt = (
        pg_insert(PRODUCTS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[P.sku])
        .returning(P.id)
    )
    return (await session.execute(stmt)).first() is not None


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(session, PRODUCTS, rows)


async def update_many(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, at: datetime, by: str | None
) -> None:
    """One executemany UPDATE: each row is `{"_id": id, name, category, unit, active}`."""
    stmt = (
        sa.update(PRODUCTS)
        .where(P.id == sa.bindparam("_id"))
        .values(
            name=sa.bindparam("name"),
            category=sa.bindparam("category"),
            unit=sa.bindparam("unit"),
            active=sa.bindparam("active"),
            version=P.version + 1,
            updated_at=at,
            updated_by=by,
        )
    )
    await session.execute(stmt, list(rows))
