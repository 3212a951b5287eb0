"""Likely duplicates: same normalised phone or email, or the same normalised name in the same
region. One query for one record (create) and one query for a whole batch (import)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.models import CUSTOMERS
from customers.archive.normalize import (
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_region,
)

MAX_CANDIDATES = 20
TEXT_ARRAY: Any = ARRAY(sa.Text)
_COLUMNS = (
    CUSTOMERS.c.id,
    CUSTOMERS.c.code,
    CUSTOMERS.c.name,
    CUSTOMERS.c.region,
    CUSTOMERS.c.owner_id,
    CUSTOMERS.c.status,
    CUSTOMERS.c.normalized_phone,
    CUSTOMERS.c.normalized_email,
    CUSTOMERS.c.normalized_name,
)


@dataclass(frozen=True, slots=True)
class Keys:
    """The normal forms one record is matched on."""

    phone: str | None
    email: str | None
    name: str | None
    region: str | None

    @classmethod
    def of(cls, data: Any) -> Keys:
        if isinstance(data, dict):
            phone, email, name, region = (data.get(f) for f in ("phone", "email", "name", "region"))
        else:
            # One attribute read per field: an import computes this for 10,000 rows.
            phone = getattr(data, "phone", None)
            email = getattr(data, "email", None)
            name = getattr(data, "name", None)
            region = getattr(data, "region", None)
        return cls(
            normalize_phone(phone),
            normalize_email(email),
            normalize_name(name),
            normalize_region(region) if region else None,
        )

    def matches(self, row: Any) -> list[str]:
        matched = []
        if self.phone and row.normalized_phone == self.phone:
            matched.append("phone")
        if self.email and row.normalized_email == self.email:
            matched.append("email")
        if self.name and row.normalized_name == self.name and row.region == self.region:
            matched.append("name")
        return matched


def candidate(row: Any, matched_on: list[str]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "code": row.code,
        "name": row.name,
        "region": row.region,
        "owner_id": str(row.owner_id) if row.owner_id else None,
        "status": row.status,
        "matched_on": matched_on,
    }


def _array(values: list[str]) -> sa.ColumnElement[list[str]]:
    # One array parameter instead of one parameter per value: a 10,000-row import stays one
    # short statement, far below the protocol's 32,767-parameter limit.
    return sa.cast(sa.bindparam(None, values), TEXT_ARRAY)


def _matching(keys: Sequence[Keys]) -> sa.Subquery | None:
    """Active customers matching any of `keys`: a UNION of one index-driven branch per rule
    (phone index, email index, (region, normalized_name) index probed once per pair)."""
    phones = sorted({k.phone for k in keys if k.phone})
    emails = sorted({k.email for k in keys if k.email})
    pairs = sorted({(k.region, k.name) for k in keys if k.name and k.region})
    c = CUSTOMERS.c
    active = c.status == "active"
    branches: list[sa.Select[Any]] = []
    if phones:
        branches.append(
            sa.select(*_COLUMNS).where(c.normalized_phone == sa.any_(_array(phones)), active)
        )
    if emails:
        branches.append(
            sa.select(*_COLUMNS).where(c.normalized_email == sa.any_(_array(emails)), active)
        )
    if pairs:
        wanted = sa.select(
            sa.func.unnest(_array([p[0] for p in pairs])).label("r"),
            sa.func.unnest(_array([p[1] for p in pairs])).label("n"),
        ).subquery("wanted")
        branches.append(
            sa.select(*_COLUMNS)
            .select_from(
                CUSTOMERS.join(
                    wanted, sa.and_(c.region == wanted.c.r, c.normalized_name == wanted.c.n)
                )
            )
            .where(active)
        )
    if not branches:
        return None
    if len(branches) == 1:
        return branches[0].subquery("matches")
    return sa.union(*branches).subquery("matches")


async def find_duplicates(
    session: AsyncSession, data: Any, exclude_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Active customers that look like `data` (a CustomerCreate or a dict)."""
    keys = Keys.of(data)
    matches = _matching([keys])
    if matches is None:
        return []
    stmt = sa.select(matches).order_by(matches.c.code).limit(MAX_CANDIDATES)
    if exclude_id is not None:
        stmt = stmt.where(matches.c.id != exclude_id)
    rows = (await session.execute(stmt)).all()
    return [candidate(r, keys.matches(r)) for r in rows if keys.matches(r)]


async def find_duplicates_bulk(
    session: AsyncSession, keys: Sequence[Keys]
) -> list[list[tuple[Any, list[str]]]]:
    """For each of `keys`, the existing rows it matches and on what: a single query."""
    out: list[list[tuple[Any, list[str]]]] = [[] for _ in keys]
    matches = _matching(keys)
    if matches is None:
        return out
    rows = (await session.execute(sa.select(matches))).all()
    by_phone: dict[str, list[Any]] = {}
    by_email: dict[str, list[Any]] = {}
    by_name: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        if r.normalized_phone:
            by_phone.setdefault(r.normalized_phone, []).append(r)
        if r.normalized_email:
            by_email.setdefault(r.normalized_email, []).append(r)
        if r.normalized_name:
            by_name.setdefault((r.region, r.normalized_name), []).append(r)
    for i, k in enumerate(keys):
        seen: dict[uuid.UUID, Any] = {}
        for r in (
            (by_phone.get(k.phone, []) if k.phone else [])
            + (by_email.get(k.email, []) if k.email else [])
            + (by_name.get((k.region, k.name), []) if k.name and k.region else [])
        ):
            seen.setdefault(r.id, r)
        out[i] = [(r, k.matches(r)) for r in seen.values()]
    return out
